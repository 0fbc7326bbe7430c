// HS256 JWTs for the tests, signed with node:crypto.
import { createHmac } from "node:crypto";

const b64 = (value) => Buffer.from(value).toString("base64url");

export function signJwt(secret, claims) {
  const head = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify(claims))}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

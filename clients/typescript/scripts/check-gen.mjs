// Regenerates the types into a temporary file and fails when they differ from src/generated.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "herald-gen-"));
try {
  const fresh = join(dir, "generated.ts");
  execFileSync(process.execPath, [join(here, "gen.mjs"), fresh], { stdio: ["ignore", "ignore", "inherit"] });
  const committed = readFileSync(resolve(here, "../src/generated.ts"), "utf8");
  if (readFileSync(fresh, "utf8") !== committed) {
    console.error("src/generated.ts is out of date with openapi/openapi.json: run `npm run gen` and commit it");
    process.exit(1);
  }
  console.log("src/generated.ts matches openapi/openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}

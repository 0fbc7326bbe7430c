// Starts a real herald for the tests: port 0, a fresh SQLite database in a temp dir
// (or a fresh Postgres database), restarts on the same port and database.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export const HERALD_BIN = process.env.HERALD_BIN ?? "/tmp/herald-bin/herald";
const LISTENING = /listening on (https?:\/\/[0-9.:]+)/;

function launch(bin, args, env) {
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`herald did not say it was listening within 20 s:\n${log}`));
    }, 20_000);
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`herald exited (${code}) before listening:\n${log}`));
    };
    child.once("exit", onExit);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      if (log.length < 200_000) log += chunk;
      const match = LISTENING.exec(log);
      if (match && match[1]) {
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve({ child, url: match[1] });
      }
    });
  });
}

/** A fresh Postgres database on HERALD_TEST_POSTGRES_URL's server (never skipped: failures throw). */
export function freshPostgres() {
  const base = process.env.HERALD_TEST_POSTGRES_URL;
  if (!base) throw new Error("HERALD_TEST_POSTGRES_URL is not set");
  const admin = new URL(base);
  admin.pathname = "/postgres";
  const name = `herald_ts_${Date.now()}_${randomBytes(3).toString("hex")}`;
  execFileSync("psql", [admin.toString(), "-v", "ON_ERROR_STOP=1", "-c", `create database ${name}`], { stdio: "pipe" });
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database made by {@link freshPostgres} (herald stopped first). */
export function dropPostgres(databaseUrl) {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  url.pathname = "/postgres";
  execFileSync("psql", [url.toString(), "-v", "ON_ERROR_STOP=1", "-c", `drop database if exists ${name} with (force)`], { stdio: "pipe" });
}

/**
 * Starts herald. `args` are extra flags; `databaseUrl` defaults to a fresh SQLite file.
 * Answers {url, port, stop(), restart(), close()}.
 */
export async function startHerald({ args = [], databaseUrl, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "herald-ts-"));
  const db = databaseUrl ?? `sqlite://${join(dir, "herald.db")}`;
  const flags = (listen) => ["--listen", listen, "--database-url", db, "--log-format", "text", ...args];
  let { child, url } = await launch(HERALD_BIN, flags("127.0.0.1:0"), env);
  const port = new URL(url).port;
  const server = {
    url,
    port,
    dir,
    /** SIGTERM, and wait for the exit. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
    /** Starts again on the same port and database. */
    async start() {
      ({ child } = await launch(HERALD_BIN, flags(`127.0.0.1:${port}`), env));
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Polls `check` until it answers truthy, or throws after `timeoutMs`. */
export async function waitFor(check, { timeoutMs = 20_000, intervalMs = 25, what = "a condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Retries `fn` until it succeeds (for publishes while herald restarts), with a deadline. */
export async function retrying(fn, { timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

// A real Better Auth server on 127.0.0.1 for the interop tests (tests/interop/test_better_auth.py).
//
// It runs auth.ts, the configuration docs/interop.md shows, as it is: Node 20 cannot run TypeScript,
// so the file is transpiled with the TypeScript compiler (types erased, nothing else changed) first.
//
// Usage: node better-auth-server.mjs [port]      (0 or absent: any free port)
// Environment read by auth.ts: JWT_ALG ("EdDSA", the default, or "RS256"), API_AUDIENCE, ADMIN_EMAILS,
// BETTER_AUTH_SECRET (random per process when absent). BETTER_AUTH_URL is set here from the port.
// Prints one line `READY <base URL>` on stdout once it accepts requests.

import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import ts from "typescript";
import { toNodeHandler } from "better-auth/node";

const here = dirname(fileURLToPath(import.meta.url));
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);

async function loadAuth() {
  const source = readFileSync(join(here, "auth.ts"), "utf8");
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  // Inside node_modules so that "better-auth" resolves from interop/node_modules; one file per process.
  const outDir = join(here, "node_modules", ".cache", "drf-oidc-jwks");
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `auth-${process.pid}.mjs`);
  writeFileSync(outFile, outputText);
  process.on("exit", () => rmSync(outFile, { force: true }));
  return (await import(pathToFileURL(outFile).href)).auth;
}

const server = createServer();
server.listen(port, "127.0.0.1", async () => {
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  process.env.BETTER_AUTH_URL = baseURL;
  process.env.BETTER_AUTH_SECRET ??= randomBytes(32).toString("hex");
  const handler = toNodeHandler(await loadAuth());
  server.on("request", (req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    handler(req, res);
  });
  console.log(`READY ${baseURL}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));

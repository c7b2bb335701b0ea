// A real Better Auth server on 127.0.0.1 for the interop tests (tests/interop/test_better_auth.py).
//
// The configuration in `createAuth()` is the one docs/interop.md shows; everything else here is
// the test harness around it (port, readiness line, in-memory database).
//
// Usage: node better-auth-server.mjs [port]      (0 or absent: any free port)
// Environment:
//   BA_ALG        signing algorithm of the JWT plugin: "EdDSA" (Better Auth's default) or "RS256"
//   BA_AUDIENCE   the "aud" of issued JWTs (the API's identifier)
//   BA_ADMINS     comma-separated e-mail addresses that get role "admin" at sign-up
// Prints one line `READY <base URL>` on stdout once it accepts requests.

import { createServer } from "node:http";
import { randomBytes } from "node:crypto";

import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { jwt, organization } from "better-auth/plugins";

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const alg = process.env.BA_ALG ?? "EdDSA";
const audience = process.env.BA_AUDIENCE ?? "http://127.0.0.1/api";
const admins = new Set((process.env.BA_ADMINS ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean));

// Pure-JS in-memory tables: no native SQLite build, nothing outlives the process.
const db = { user: [], session: [], account: [], verification: [], jwks: [], organization: [], member: [], invitation: [] };

function createAuth(baseURL) {
  const auth = betterAuth({
    baseURL,
    secret: process.env.BETTER_AUTH_SECRET ?? randomBytes(32).toString("hex"),
    database: memoryAdapter(db),
    emailAndPassword: { enabled: true },
    user: {
      // The application role; never settable by the user at sign-up (input: false).
      additionalFields: { role: { type: "string", defaultValue: "user", input: false } },
    },
    databaseHooks: {
      user: {
        create: {
          before: async (user) => ({ data: { ...user, role: admins.has(user.email.toLowerCase()) ? "admin" : "user" } }),
        },
      },
    },
    plugins: [
      organization(),
      jwt({
        // EdDSA (Ed25519) is Better Auth's default; RS256 suits verifiers limited to RSA.
        jwks: { keyPairConfig: alg === "RS256" ? { alg: "RS256", modulusLength: 2048 } : { alg: "EdDSA", crv: "Ed25519" } },
        jwt: {
          issuer: baseURL,
          audience,
          expirationTime: "15m",
          // The claims drf-oidc-jwks reads with PROVIDER = "better-auth".
          definePayload: async ({ user, session }) => {
            const ctx = await auth.$context;
            const members = await ctx.adapter.findMany({ model: "member", where: [{ field: "userId", value: user.id }] });
            const tenant = session.activeOrganizationId ?? members[0]?.organizationId ?? null;
            return {
              email: user.email,
              email_verified: user.emailVerified,
              name: user.name,
              role: user.role,
              tenant_id: tenant,
              organization_ids: members.map((m) => m.organizationId),
              org_role: members.find((m) => m.organizationId === tenant)?.role ?? null,
            };
          },
        },
      }),
    ],
  });
  return auth;
}

const server = createServer();
server.listen(port, "127.0.0.1", () => {
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  const handler = toNodeHandler(createAuth(baseURL));
  server.on("request", (req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    handler(req, res);
  });
  console.log(`READY ${baseURL}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));

// auth.ts: a Better Auth server whose JWTs drf-oidc-jwks verifies with PROVIDER = "better-auth".
// docs/providers.md shows this file verbatim; the interop tests run it (better-auth-server.mjs) and type-check it.
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { jwt, organization } from "better-auth/plugins";

// The tests keep everything in memory; use your real database adapter here.
const db = { user: [], session: [], account: [], verification: [], jwks: [], organization: [], member: [], invitation: [] };

// Who gets the application role "admin" at sign-up: addresses, or "@domain" for a whole domain.
// Users can never choose their own role (input: false below).
const adminEmails = new Set(
  (process.env.ADMIN_EMAILS ?? "")
    .split(",")
    .map((email) => email.trim().toLowerCase())
    .filter(Boolean),
);
const isAdmin = (email: string): boolean => {
  const address = email.toLowerCase();
  return adminEmails.has(address) || adminEmails.has(address.slice(address.lastIndexOf("@")));
};

// The API's identifier: the "aud" of every JWT, and AUDIENCE in DRF_OIDC_JWKS.
const apiAudience = process.env.API_AUDIENCE ?? "https://api.example.com";

export const auth = betterAuth({
  // baseURL comes from BETTER_AUTH_URL, the secret from BETTER_AUTH_SECRET.
  database: memoryAdapter(db),
  emailAndPassword: { enabled: true },
  user: {
    additionalFields: { role: { type: "string", defaultValue: "user", input: false } },
  },
  databaseHooks: {
    user: {
      create: {
        before: async (user) => ({
          data: { ...user, role: isAdmin(user.email) ? "admin" : "user" },
        }),
      },
    },
  },
  plugins: [
    organization(),
    jwt({
      jwks: {
        // Better Auth's default is EdDSA (Ed25519): list "EdDSA" in ALGORITHMS. RS256 suits RSA-only verifiers.
        keyPairConfig: process.env.JWT_ALG === "RS256" ? { alg: "RS256", modulusLength: 2048 } : { alg: "EdDSA", crv: "Ed25519" },
      },
      jwt: {
        // The default issuer and audience are both BETTER_AUTH_URL; an explicit audience names the API.
        issuer: process.env.BETTER_AUTH_URL,
        audience: apiAudience,
        expirationTime: "15m",
        // The claims drf-oidc-jwks reads with PROVIDER = "better-auth".
        definePayload: async ({ user, session }): Promise<Record<string, unknown>> => {
          const ctx = await auth.$context;
          const members = await ctx.adapter.findMany<{ organizationId: string; role: string }>({
            model: "member",
            where: [{ field: "userId", value: user.id }],
          });
          const tenant: string | null = session.activeOrganizationId ?? members[0]?.organizationId ?? null;
          return {
            email: user.email,
            email_verified: user.emailVerified,
            name: user.name,
            role: user.role,
            tenant_id: tenant,
            organization_ids: members.map((member) => member.organizationId),
            org_role: members.find((member) => member.organizationId === tenant)?.role ?? null,
          };
        },
      },
    }),
  ],
});

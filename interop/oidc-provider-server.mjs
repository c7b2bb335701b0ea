// panva's oidc-provider (a certified OpenID Provider) on 127.0.0.1 for tests/interop/test_oidc_provider.py.
//
// Client-credentials grant with Resource Indicators (RFC 8707): an access token requested for
// `resource=<API identifier>` is a JWT (RFC 9068, `typ: at+jwt`) whose `aud` is that identifier.
// A resource indicator ending in "/es256" is signed with ES256, every other one with RS256.
//
// Usage: node oidc-provider-server.mjs [port]      (0 or absent: any free port)
// Environment:
//   OP_CLIENT_ID, OP_CLIENT_SECRET   the one confidential client (client_secret_basic)
//   OP_DPOP_ALGS                     comma-separated DPoP proof algorithms the token endpoint accepts
//                                    (unset: oidc-provider's default, ES256 and EdDSA/Ed25519)
//   OP_DPOP_REQUIRE_NONCE=1          the token endpoint requires its own DPoP nonce (RFC 9449 8)
//
// DPoP (RFC 9449): features.dPoP is on by default in oidc-provider 9; a token request carrying a `DPoP`
// proof gets `token_type: DPoP` and a JWT access token bound by `cnf.jkt`. Without a proof, Bearer as before.
// Prints one line `READY <issuer>` on stdout once it accepts requests.
//
// Opaque tokens and logout (tests/interop/test_oidc_provider_revocation.py); unset, nothing changes:
//   OP_INTROSPECTION=1           features.introspection and features.revocation; a resource indicator
//                                ending in "/opaque" gets opaque access tokens (RFC 7662 answers them)
//   OP_BACKCHANNEL_LOGOUT_URI    features.backchannelLogout and devInteractions (its own login and
//                                consent forms), and a second client OP_WEB_CLIENT_ID /
//                                OP_WEB_CLIENT_SECRET (authorization code + PKCE) whose
//                                backchannel_logout_uri is this URL
//
// Step-up (tests/interop/test_oidc_provider_step_up.py); unset, nothing changes:
//   OP_STEP_UP_ACR_VALUES        space-separated acr values (acr_values_supported). Switches on
//                                devInteractions and the web client as above; a login records the first
//                                value as its acr, or the one the authorization request's acr_values
//                                names among these (a stand-in for a second factor: devInteractions has
//                                only its one login form). JWT access tokens from the authorization code
//                                carry the login's acr, amr and auth_time (RFC 9068 2.2.1).
//
// Test-harness only: `POST /__rotate` (loopback only) generates a new RSA key, publishes it first
// in the JWKS and signs with it from then on; the previous keys stay published. The issuer, port
// and client stay the same, as with a real IdP rotating its keys.

import { createServer } from "node:http";
import { generateKeyPairSync, randomBytes } from "node:crypto";

import Provider from "oidc-provider";

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const clientId = process.env.OP_CLIENT_ID ?? "reporting-service";
const clientSecret = process.env.OP_CLIENT_SECRET ?? randomBytes(24).toString("hex");
const dpopAlgs = process.env.OP_DPOP_ALGS ? process.env.OP_DPOP_ALGS.split(",") : null;
const dpopNonceSecret = process.env.OP_DPOP_REQUIRE_NONCE === "1" ? randomBytes(32) : null;
let serial = 0;

function newKey(kind) {
  serial += 1;
  const { privateKey } =
    kind === "EC"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : generateKeyPairSync("rsa", { modulusLength: 2048 });
  const alg = kind === "EC" ? "ES256" : "RS256";
  return { ...privateKey.export({ format: "jwk" }), kid: `${alg.toLowerCase()}-${serial}`, use: "sig", alg };
}

function buildProvider(issuer, keys) {
  const config = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys },
    scopes: ["reports:read", "reports:write"],
    ...(dpopAlgs ? { enabledJWA: { dPoPSigningAlgValues: dpopAlgs } } : {}),
    features: {
      devInteractions: { enabled: false },
      ...(dpopNonceSecret
        ? { dPoP: { enabled: true, nonceSecret: dpopNonceSecret, requireNonce: () => true } }
        : {}),
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => ({
          scope: "reports:read reports:write",
          audience: resourceIndicator,
          accessTokenTTL: 300,
          accessTokenFormat: accessTokenFormatFor(resourceIndicator),
          jwt: { sign: { alg: resourceIndicator.endsWith("/es256") ? "ES256" : "RS256" } },
        }),
      },
    },
    // Service identities get application roles and a tenant like users do.
    extraTokenClaims: (ctx, token) =>
      token.kind === "ClientCredentials" ? { roles: ["reports-reader"], tenant_id: "acme" } : undefined,
    cookies: { keys: [randomBytes(16).toString("hex")] },
  };
  addOpaqueAndLogout(config);
  addStepUp(config);
  const provider = new Provider(issuer, config);
  if (stepUpAcrValues) recordLoginAcr(provider);
  provider.on("server_error", (ctx, err) => console.error("server_error", err));
  watchLogout(provider);
  return provider;
}

// --- opaque tokens, introspection, revocation, back-channel logout (switched by environment variables) ---
const introspection = process.env.OP_INTROSPECTION === "1";
const backchannelLogoutUri = process.env.OP_BACKCHANNEL_LOGOUT_URI;

function accessTokenFormatFor(resourceIndicator) {
  return introspection && resourceIndicator.endsWith("/opaque") ? "opaque" : "jwt";
}

function addOpaqueAndLogout(config) {
  if (introspection) {
    config.features.introspection = { enabled: true };
    config.features.revocation = { enabled: true };
  }
  if (backchannelLogoutUri) {
    config.features.backchannelLogout = { enabled: true };
    config.features.devInteractions = { enabled: true };
    addWebClient(config, {
      backchannel_logout_uri: backchannelLogoutUri,
      backchannel_logout_session_required: true,
    });
    // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection); the API under
    // test listens on 127.0.0.1, so the logout POST to exactly that URL goes without the check.
    config.fetch = (url, options) => {
      if (String(url) === new URL(backchannelLogoutUri).href) delete options.dispatcher;
      return globalThis.fetch(url, options);
    };
  }
}
// One web client (authorization code + PKCE) signing users in through devInteractions' forms.
function addWebClient(config, extra) {
  config.features.devInteractions = { enabled: true };
  if (!config.scopes.includes("openid")) config.scopes.push("openid");
  const clientId = process.env.OP_WEB_CLIENT_ID ?? "web-app";
  const existing = config.clients.find((client) => client.client_id === clientId);
  if (existing) {
    Object.assign(existing, extra);
    return;
  }
  config.clients.push({
    client_id: clientId,
    client_secret: process.env.OP_WEB_CLIENT_SECRET ?? randomBytes(24).toString("hex"),
    grant_types: ["authorization_code"],
    response_types: ["code"],
    redirect_uris: ["http://127.0.0.1/callback"],
    token_endpoint_auth_method: "client_secret_basic",
    ...extra,
  });
}
function watchLogout(provider) {
  provider.on("backchannel.error", (ctx, err, client) => console.error("backchannel.error", client.clientId, err));
  provider.on("backchannel.success", (ctx, client) => console.error("backchannel.success", client.clientId));
}
// --- end of opaque tokens and logout ---

// --- step-up (RFC 9470): acr, amr and auth_time in access tokens (switched by OP_STEP_UP_ACR_VALUES) ---
const stepUpAcrValues = process.env.OP_STEP_UP_ACR_VALUES?.split(" ").filter(Boolean);

function addStepUp(config) {
  if (!stepUpAcrValues) return;
  addWebClient(config, {});
  config.acrValues = stepUpAcrValues;
  const clientCredentialsClaims = config.extraTokenClaims;
  // oidc-provider puts acr/amr/auth_time in ID tokens only; the authorization code keeps the login's.
  config.extraTokenClaims = async (ctx, token) => {
    const code = ctx?.oidc?.entities?.AuthorizationCode;
    if (token.kind !== "AccessToken" || !code) return clientCredentialsClaims(ctx, token);
    return { acr: code.acr, amr: code.amr, auth_time: code.authTime };
  };
}

// devInteractions finishes a login with only an account id: stamp the acr (and amr) the login achieved.
function recordLoginAcr(provider) {
  const finished = provider.interactionFinished.bind(provider);
  provider.interactionFinished = async (req, res, result, options) => {
    if (result?.login) {
      const { params } = await provider.interactionDetails(req, res);
      const asked = String(params.acr_values ?? "").split(" ");
      const acr = stepUpAcrValues.find((value) => asked.includes(value)) ?? stepUpAcrValues[0];
      const amr = acr === stepUpAcrValues[0] ? ["pwd"] : ["pwd", "otp"];
      result = { ...result, login: { ...result.login, acr, amr } };
    }
    return finished(req, res, result, options);
  };
}
// --- end of step-up ---

const keys = [newKey("RSA"), newKey("EC")];
let callback = null;

const server = createServer((req, res) => {
  if (req.url === "/__rotate" && req.method === "POST") {
    const key = newKey("RSA");
    keys.unshift(key); // first RS256 key in the keystore signs
    callback = buildProvider(server.issuer, keys.slice()).callback();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ kid: key.kid }));
    return;
  }
  callback(req, res);
});

server.listen(port, "127.0.0.1", () => {
  server.issuer = `http://127.0.0.1:${server.address().port}`;
  callback = buildProvider(server.issuer, keys.slice()).callback();
  console.log(`READY ${server.issuer}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));

// A real OpenID Connect provider (panva/oidc-provider) on 127.0.0.1, for chat's single sign-on
// tests only. It keeps everything in memory and trusts whoever can reach loopback: never deploy it.
//
//   node provider.mjs --config FILE [--port N]
//
// FILE (or the JSON text in OIDC_PROVIDER_CONFIG) holds:
//   {"clients": [{"client_id", "client_secret", "redirect_uris", "token_endpoint_auth_method"?}],
//    "users": [{"sub", "email"?, "email_verified"?, "preferred_username"?, "name"?}],
//    "registration_token": "..." (optional: enables dynamic registration at /reg with it),
//    "conform_id_token_claims": false (optional: true keeps profile and email claims out of the
//                                      ID token, in userinfo only, as OIDC Core 5.4 reads)}
// The port comes from --port or OIDC_PROVIDER_PORT; 0 (the default) lets the kernel choose, and
// the issuer is built from the port actually bound.
//
// Protocol with the test: once listening, the script writes ONE JSON line to stdout,
// {"issuer": "http://127.0.0.1:PORT", "port": PORT, "pid": PID}, and nothing else ever; its log
// goes to stderr. It exits when stdin closes (the test process went away, however it died), on
// SIGTERM or on SIGINT, so it never outlives the test run.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

// stdout carries only the ready line; oidc-provider prints its notices with console.info.
console.log = console.error;
console.info = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const HOST = '127.0.0.1';
const MAX_FORM_BYTES = 16 * 1024;
const CLOSE_GRACE_MS = 2000;

function log(message) {
  process.stderr.write(`${new Date().toISOString()} ${message}\n`);
}

function fail(message) {
  log(`fatal: ${message}`);
  process.exit(2);
}

function readConfiguration() {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, port: { type: 'string' } },
    strict: true,
  });
  let text = process.env.OIDC_PROVIDER_CONFIG;
  if (values.config !== undefined) {
    text = readFileSync(values.config, 'utf8');
  }
  if (text === undefined) {
    fail('no configuration: pass --config FILE or set OIDC_PROVIDER_CONFIG');
  }
  const config = JSON.parse(text);
  const port = Number(values.port ?? process.env.OIDC_PROVIDER_PORT ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail(`invalid port ${JSON.stringify(values.port ?? process.env.OIDC_PROVIDER_PORT)}`);
  }
  if (!Array.isArray(config.users) || config.users.some((user) => typeof user.sub !== 'string')) {
    fail('config.users must be a list of objects, each with a string "sub"');
  }
  return { config, port };
}

const { config, port: requestedPort } = readConfiguration();
const users = config.users;

// A login name is a user's preferred_username or their sub; accounts are found by sub only,
// because sub is what oidc-provider stores in the session and puts in every token.
function userForLogin(login) {
  return users.find((user) => user.preferred_username === login || user.sub === login);
}

async function findAccount(_ctx, sub) {
  const user = users.find((candidate) => candidate.sub === sub);
  if (user === undefined) {
    return undefined;
  }
  return {
    accountId: user.sub,
    // oidc-provider filters these by the granted scopes and claims.
    async claims() {
      return { ...user };
    },
  };
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

// Pages with stable ids and names, so that Playwright and tests/support/oidc_login.py both find
// the forms. No external stylesheet or font: a browser under test must not reach outside.
function page(title, body, status = 200) {
  return {
    status,
    html: `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>
`,
  };
}

function abortForm(uid) {
  return `<form id="abort-form" method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="abort">Cancel</button></form>`;
}

function loginPage(uid, params, error) {
  const hint = params.login_hint ? ` value="${escapeHtml(params.login_hint)}"` : '';
  const message = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>\n` : '';
  return page('Sign in', `${message}<form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="login">Login name</label>
<input id="login" name="login" required autofocus autocomplete="off"${hint}>
<button type="submit" id="sign-in">Sign in</button></form>
${abortForm(uid)}`, error ? 401 : 200);
}

function consentPage(uid, clientId, details) {
  const scopes = (details.missingOIDCScope ?? []).map((scope) => `<li>${escapeHtml(scope)}</li>`);
  return page('Authorize', `<p>${escapeHtml(clientId)} asks for:</p>
<ul id="scopes">${scopes.join('')}</ul>
<form id="consent-form" method="post" action="/interaction/${escapeHtml(uid)}/confirm">
<button type="submit" id="continue">Continue</button></form>
${abortForm(uid)}`);
}

function send(res, { status, html }) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      throw new Error('form body too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The interaction pages oidc-provider redirects to (its default interactions.url,
// /interaction/:uid). They replace its devInteractions, whose login form accepts any name as the
// account id and whose page loads a web font from outside.
async function interaction(provider, req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (error) {
    // An unknown or expired interaction, or a request without its cookie.
    send(res, page('Sign-in failed', `<p id="error">${escapeHtml(error.message)}</p>`, 400));
    return;
  }
  if (details.uid !== uid) {
    send(res, page('Sign-in failed', '<p id="error">interaction id mismatch</p>', 400));
    return;
  }
  const { prompt, params, session } = details;

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') {
      send(res, loginPage(uid, params));
    } else if (prompt.name === 'consent') {
      send(res, consentPage(uid, params.client_id, prompt.details));
    } else {
      send(res, page('Sign-in failed', `<p id="error">unsupported prompt ${escapeHtml(prompt.name)}</p>`, 501));
    }
    return;
  }
  if (req.method !== 'POST') {
    send(res, page('Method not allowed', '', 405));
    return;
  }

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const user = userForLogin(login);
    if (user === undefined) {
      log(`login refused: no user ${JSON.stringify(login)}`);
      send(res, loginPage(uid, params, `No user ${JSON.stringify(login)}`));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: user.sub },
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    // What oidc-provider's own devInteractions do on consent: grant what is missing.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) {
      grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    }
    if (prompt.details.missingOIDCClaims) {
      grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }
  send(res, page('Sign-in failed', `<p id="error">${escapeHtml(action)} does not answer the ${escapeHtml(prompt.name)} prompt</p>`, 400));
}

function errorPage(ctx, out) {
  ctx.type = 'html';
  const rows = Object.entries(out)
    .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`)
    .join('');
  ctx.body = page('Sign-in failed', `<dl id="error">${rows}</dl>`).html;
}

function rsaSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: config.clients ?? [],
    findAccount,
    // Standard claims of the scopes the chat asks for; `openid` always yields `sub`.
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid'],
    responseTypes: ['code'],
    // By default oidc-provider requires PKCE of public clients only; the chat is confidential
    // and must still send it. oidc-provider 9 accepts S256 alone.
    pkce: { required: () => true },
    conformIdTokenClaims: config.conform_id_token_claims === true,
    features: {
      devInteractions: { enabled: false },
      registration: config.registration_token
        ? { enabled: true, initialAccessToken: config.registration_token }
        : { enabled: false },
    },
    // Fresh keys each run: nothing signed by an earlier run verifies against this one.
    jwks: { keys: [rsaSigningKey()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      ClientCredentials: 600,
      Grant: 3600,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
    },
    renderError: errorPage,
  });
  // Plain http on 127.0.0.1 needs no setting: oidc-provider accepts an http issuer and http
  // redirect_uris for web clients using the code flow. It marks cookies Secure only when the
  // request is https, so sessions work over loopback http (loopback tests only).
  for (const event of [
    'authorization.error',
    'grant.error',
    'end_session.error',
    'userinfo.error',
    'registration_create.error',
    'server_error',
  ]) {
    provider.on(event, (...args) => {
      const error = args.at(-1);
      // error_detail is the cause oidc-provider keeps from the client, e.g. a PKCE mismatch.
      const parts = [error?.name, error?.message ?? String(error), error?.error_description,
        error?.error_detail];
      log(`${event}: ${parts.filter(Boolean).join(' | ')}`);
    });
  }
  return provider;
}

const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/;

const server = createServer();
server.keepAliveTimeout = 1000;

server.listen(requestedPort, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;
  let provider;
  try {
    provider = buildProvider(issuer);
  } catch (error) {
    fail(`invalid configuration: ${error.stack ?? error}`);
  }
  const callback = provider.callback();
  server.on('request', (req, res) => {
    res.on('finish', () => log(`${req.method} ${req.url} -> ${res.statusCode}`));
    const match = INTERACTION_PATH.exec(new URL(req.url, issuer).pathname);
    if (match === null) {
      callback(req, res);
      return;
    }
    interaction(provider, req, res, match[1], match[2]).catch((error) => {
      log(`interaction error: ${error.stack ?? error}`);
      if (!res.headersSent) {
        const status = error instanceof errors.OIDCProviderError ? error.statusCode : 500;
        send(res, page('Sign-in failed', `<p id="error">${escapeHtml(error.message)}</p>`, status));
      } else {
        res.destroy();
      }
    });
  });
  log(`listening as ${issuer}`);
  process.stdout.write(`${JSON.stringify({ issuer, port, pid: process.pid })}\n`);
});

server.on('error', (error) => fail(`cannot listen: ${error.message}`));

let closing = false;
function shutdown(reason) {
  if (closing) {
    return;
  }
  closing = true;
  log(`stopping: ${reason}`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Bounded: a connection that will not close does not keep the process alive.
  setTimeout(() => process.exit(0), CLOSE_GRACE_MS).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.stdin.on('end', () => shutdown('stdin closed'));
process.stdin.on('error', () => shutdown('stdin error'));
process.stdin.resume();

// Generated from openapi.json by `npm run sdk`. Do not edit: change the route schemas, run
// `npm run openapi && npm run sdk`, and commit the result.
export interface paths {
    "/health/live": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Liveness
         * @description 200 while the process runs. Touches nothing else, so a slow database never restarts the process.
         */
        get: operations["getLiveness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health/ready": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness
         * @description 200 when the database answers and every migration is applied; 503 otherwise, and while shutting down.
         */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/.well-known/jwks.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The public keys that verify access tokens
         * @description With `JWT_SIGNING_KEYS` configured, access tokens are EdDSA or ES256, with the signing key's `kid` in their header, and this JWK set lets other services verify them (e.g. with `jose`'s `createRemoteJWKSet`). Cacheable for 300 s. 404 when tokens are HS256 (the default), whose key is a shared secret and never published.
         */
        get: operations["getJwks"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/signup": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create an account
         * @description Creates a user with role `user`. The password must be 8 to 128 characters and differ from the username.
         */
        post: operations["signUp"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Log in with username and password
         * @description Returns an access token and a refresh token. An unknown user and a wrong password get the same 401. After 5 failures for one username, further attempts get 429 until the window passes. With two-factor on, the right password gets 401 `MFA_REQUIRED` with an `mfa_token` instead: finish with `POST /v1/auth/login/mfa`.
         */
        post: operations["logIn"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/login/mfa": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Finish a two-factor login with a code or a recovery code
         * @description The second step after `POST /v1/auth/login` answered `MFA_REQUIRED`: its `mfa_token` with the code your authenticator app shows (accepted one 30 s step either side, each code once) or one of your recovery codes (each once). A wrong one is 401 `INVALID_MFA_CODE` and counts as a failed login of the username; the 5th wrong one spends the `mfa_token` (401 `INVALID_MFA_TOKEN`): log in again.
         */
        post: operations["logInWithSecondFactor"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/email/verify": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Confirm an email address with the token from its mail
         * @description Marks the address the token was mailed to as verified, if it is still the account's. The token is single use and lasts 24 hours; an unknown, used or expired one (or one for an address the account no longer has) is 400 `INVALID_EMAIL_TOKEN`. Needs no credentials: the token is the proof.
         */
        post: operations["verifyEmail"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/password/forgot": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Mail a password reset link
         * @description If an enabled account has this address, verified, a reset token (single use, 1 hour) is mailed to it. The answer is 202 either way, and the request does the same work either way, so it says nothing about who has an account; an unverified address gets nothing. Limited per client address (like login) and to 5 requests per address per hour (429). 503 `MAIL_UNAVAILABLE` when the server has no way to send mail.
         */
        post: operations["forgotPassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/password/reset": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Set a new password with the token from a reset mail
         * @description Sets the password and ends every earlier sign-in, as a password change does: every refresh token and web session is revoked, and access tokens issued before now are refused. The token is single use and lasts 1 hour; using it spends every other reset token of the account. An unknown, used or expired token is 400 `INVALID_RESET_TOKEN`. Two-factor, when on, stays on.
         */
        post: operations["resetPassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/oidc/authorize": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Sign in with the OpenID provider
         * @description Open this in the user's browser: it redirects to the OpenID provider (authorization code flow with PKCE, `state` and `nonce`, kept by the server, so your client need not keep cookies). After the provider, the browser comes back to `redirect_uri` with a one-time `code` (exchange it within 60 s at `POST /v1/auth/token` with `grant_type=authorization_code`) and your `state`, or with an RFC 6749 `error` (`access_denied`, `server_error`, `temporarily_unavailable`) and `error_description`. The first sign-in of a provider's user makes an account, linked to their `(iss, sub)` (never to an account with the same email); the account has no password and no local second factor applies. `redirect_uri` is required and must be exactly one of `OIDC_ALLOWED_REDIRECTS` (400 `REDIRECT_URI_NOT_ALLOWED`). 404 `OIDC_NOT_CONFIGURED` on a server without a provider; 503 `OIDC_PROVIDER_UNAVAILABLE` when the provider cannot be reached.
         */
        get: operations["startSingleSignOn"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/oidc/callback": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Where the OpenID provider sends the browser back
         * @description Not for clients to call: register it as the redirect URI of this service's client at the provider. It validates the answer (the state, the code exchanged with the PKCE verifier, and the ID token's signature, issuer, audience, expiry and nonce) and redirects to the sign-in's `redirect_uri` with `code` or `error`. A `state` that is not one of ours, older than 10 minutes or already used is 400 `INVALID_OIDC_STATE`: there is then no `redirect_uri` to trust.
         */
        get: operations["finishSingleSignOn"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/refresh": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Exchange a refresh token for a new token pair
         * @description The refresh token is single use: it is rotated, and the response carries its successor. Presenting an already rotated token again revokes its whole family (every token of that login), as it means someone else holds a copy.
         */
        post: operations["refreshTokens"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Revoke a refresh token and its family
         * @description Ends the login the refresh token belongs to. Answers 204 whether or not the token was valid (as OAuth2 token revocation does, RFC 7009), so it reveals nothing. Access tokens already issued expire on their own.
         */
        post: operations["logOut"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/token": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * OAuth2 token endpoint (password, refresh_token and authorization_code grants)
         * @description RFC 6749 token endpoint, `application/x-www-form-urlencoded`; the /docs *Authorize* dialog uses it. `grant_type=password` with `username` and `password`, `grant_type=refresh_token` with `refresh_token`, or `grant_type=authorization_code` with the `code` a single sign-on ended with (`GET /v1/auth/oidc/authorize`; single use, within 60 s). An account with two-factor on cannot use the password grant (`invalid_grant`, with an `error_description` saying so). Errors are problem details that also carry RFC 6749's `error` (`invalid_request`, `invalid_grant`, `unsupported_grant_type`, `invalid_scope`).
         */
        post: operations["issueToken"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Your account
         * @description The account the credentials belong to.
         *
         *     **Requires:** any authenticated caller. Access tokens and API keys are accepted.
         */
        get: operations["getCurrentUser"];
        put?: never;
        post?: never;
        /**
         * Delete your account
         * @description Deletes the account and everything it owns (tasks, tokens, API keys) in one transaction. The last active admin cannot delete themselves (409).
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        delete: operations["deleteCurrentUser"];
        options?: never;
        head?: never;
        /**
         * Change your display name or email
         * @description Merge patch: absent fields stay as they are, `null` clears a field.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        patch: operations["updateCurrentUser"];
        trace?: never;
    };
    "/v1/users/me/password": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Change your password
         * @description Needs the current password; wrong ones count as failed logins of your username. Revokes every refresh token of the account, and access tokens issued before the change stop working: log in again with the new password.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        post: operations["changePassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/me/identities": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Your linked identities
         * @description The accounts of the OpenID provider that sign in to yours (single sign-on). Link one from the account page of /app.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        get: operations["listIdentities"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/me/identities/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Unlink an identity
         * @description The provider's account no longer signs in to yours. Refused (409 `LAST_WAY_IN`) when it is the account's only way in: no password and no other identity; set a password through `POST /v1/auth/password/forgot` first (which needs a verified email).
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        delete: operations["unlinkIdentity"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List users (admin)
         * @description Newest first, paged with an opaque keyset cursor that stays stable while users sign up. A `Link: <…>; rel="next"` header accompanies `next_cursor`.
         *
         *     **Requires:** scopes `admin`, role `admin`. Access tokens only: API keys are refused (403).
         */
        get: operations["listUsers"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a user (admin)
         * @description **Requires:** scopes `admin`, role `admin`. Access tokens only: API keys are refused (403).
         */
        get: operations["getUser"];
        put?: never;
        post?: never;
        /**
         * Delete a user (admin)
         * @description Deletes the user and everything they own, in one transaction. The last active admin cannot be deleted (409).
         *
         *     **Requires:** scopes `admin`, role `admin`. Access tokens only: API keys are refused (403).
         */
        delete: operations["deleteUser"];
        options?: never;
        head?: never;
        /**
         * Change a user's role or status (admin)
         * @description Disabling revokes the user's refresh tokens at once; their access tokens and API keys stop working within 60 s. The last active admin cannot be demoted or disabled (409).
         *
         *     **Requires:** scopes `admin`, role `admin`. Access tokens only: API keys are refused (403).
         */
        patch: operations["updateUser"];
        trace?: never;
    };
    "/v1/users/me/email/verification": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Mail a verification link to your email address
         * @description Sends a link (single use, 24 hours) to your current address; following it, or posting its token to `POST /v1/auth/email/verify`, marks the address verified. Asking again sends a new link; earlier ones keep working until they expire. 400 `NO_EMAIL` when the account has no address; 503 `MAIL_UNAVAILABLE` when the server cannot send mail.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        post: operations["requestEmailVerification"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/me/mfa/totp": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Start turning on two-factor (TOTP)
         * @description Makes a new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s) for your authenticator app: show `otpauth_uri` as a QR code, or type `secret` in. Two-factor is not on until `POST /v1/users/me/mfa/totp/activate` confirms a code. Starting again replaces the secret. Needs your password (403 `WRONG_CURRENT_PASSWORD`, counted as a failed login); 409 `MFA_ALREADY_ENABLED` when it is on.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        post: operations["startTotpEnrolment"];
        /**
         * Turn off two-factor
         * @description Needs your password and a code (or a recovery code). Forgets the secret and the recovery codes. 403 `WRONG_CURRENT_PASSWORD` or `WRONG_MFA_CODE`; 409 `MFA_NOT_ENABLED` when it is off.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        delete: operations["disableTotp"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/me/mfa/totp/activate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Turn on two-factor with a code from your app
         * @description Confirms that your authenticator app has the enrolled secret and turns two-factor on: from now on logging in also takes a code. Returns 10 recovery codes, shown this once. 403 `WRONG_MFA_CODE` for a wrong code; 409 `MFA_NOT_ENROLLING` without an enrolment under way.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        post: operations["activateTotp"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/me/mfa/recovery-codes": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Replace your recovery codes
         * @description Ten new recovery codes, shown this once; the old ones stop working. Needs your password and a code (or a recovery code). 403 `WRONG_CURRENT_PASSWORD` or `WRONG_MFA_CODE`; 409 `MFA_NOT_ENABLED` when two-factor is off.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        post: operations["regenerateRecoveryCodes"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{id}/mfa": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Turn off a user's two-factor (admin)
         * @description For a user who lost both their authenticator and their recovery codes: they can then log in with their password alone, and enrol again. Answers 204 whether or not it was on.
         *
         *     **Requires:** scopes `admin`, role `admin`. Access tokens only: API keys are refused (403).
         */
        delete: operations["disableUserMfa"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/api-keys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List your API keys
         * @description Your keys that are not revoked, newest first, with their prefix but never the secret.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        get: operations["listApiKeys"];
        put?: never;
        /**
         * Create an API key
         * @description Returns the key once, in `key`: store it now, it cannot be shown again. Send it as `X-API-Key`. Its scopes must be a subset of yours.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        post: operations["createApiKey"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/api-keys/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Revoke an API key
         * @description The key stops working at once on this server and within 30 s everywhere.
         *
         *     **Requires:** any authenticated caller. Access tokens only: API keys are refused (403).
         */
        delete: operations["revokeApiKey"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tasks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List your tasks
         * @description The tasks of every project you are a member of (`project_id` narrows it to one), filtered, searched and sorted, one page at a time. Filters combine with AND.
         *
         *     Paging uses keyset cursors: follow `next_cursor` (or the `Link: rel="next"` header) until it is null.
         *     A cursor only works with the sort and filters of the request that produced it, and only for you;
         *     anything else, or an altered cursor, is a 400 with code `INVALID_CURSOR`. Tasks added or removed
         *     while you page do not make the remaining pages skip or repeat tasks.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["listTasks"];
        put?: never;
        /**
         * Create a task
         * @description Creates a task in `project_id` (your Inbox when omitted), made by you: you must be the project's owner or an editor (a viewer gets 403, a project you are not a member of 404). `assignee_id` must be a member of the project (else 422 `ASSIGNEE_NOT_MEMBER`). Send an `Idempotency-Key` to make retries safe: see the header's description.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["createTask"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tasks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a task
         * @description A task of a project you are a member of (any other is a 404), with its `ETag`. Send that tag in `If-None-Match` to get a 304 without a body while the task is unchanged.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["getTask"];
        /**
         * Replace a task
         * @description Sets every writable field; omitted ones return to their defaults, except `project_id` and `assignee_id`, which are kept. You must be owner or editor of the task's project (a viewer gets 403). With `If-Match`, only when the task still has that `ETag` (else 412, and nothing changes).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        put: operations["replaceTask"];
        post?: never;
        /**
         * Delete a task
         * @description Deletes a task of a project you own or edit (a viewer gets 403). With `If-Match`, only when the task still has that `ETag` (else 412).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        delete: operations["deleteTask"];
        options?: never;
        head?: never;
        /**
         * Update some fields of a task
         * @description A JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`: the fields present are set, the others kept. Setting `project_id` moves the task: you must be owner or editor of both projects (a project you are not a member of is a 404), and an assignee who is not a member of the new one is cleared. You must be owner or editor of the task's project (a viewer gets 403). With `If-Match`, only when the task still has that `ETag` (else 412, and nothing changes); of two writers holding the same `ETag`, exactly one succeeds.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        patch: operations["updateTask"];
        trace?: never;
    };
    "/v1/projects": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List your projects
         * @description The projects you are a member of, your Inbox included, one page at a time: follow `next_cursor` (or the `Link: rel="next"` header) until it is null. A cursor only works with the sort that produced it, and only for you (else 400 `INVALID_CURSOR`).
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["listProjects"];
        put?: never;
        /**
         * Create a project
         * @description Creates a project owned by you; share it by adding members. Send an `Idempotency-Key` to make retries safe: see the header's description.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["createProject"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/projects/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a project
         * @description A project you are a member of (any other is a 404), with its `ETag`. Send that tag in `If-None-Match` to get a 304 without a body while it is unchanged.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["getProject"];
        put?: never;
        post?: never;
        /**
         * Delete a project and its tasks
         * @description Deletes the project with every task in it, for every member. Owner only (an editor or viewer gets 403); the Inbox cannot be deleted (409 `INBOX_IMMUTABLE`). With `If-Match`, only when the project still has that `ETag` (else 412).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        delete: operations["deleteProject"];
        options?: never;
        head?: never;
        /**
         * Rename a project or change its description
         * @description A JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`. Owner and editors only (a viewer gets 403); the Inbox keeps its name (409 `INBOX_IMMUTABLE`). With `If-Match`, only when the project still has that `ETag` (else 412, and nothing changes).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        patch: operations["updateProject"];
        trace?: never;
    };
    "/v1/projects/{id}/members": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a project's members
         * @description The members of a project you are a member of (any other is a 404), in the order they joined, one page at a time.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["listProjectMembers"];
        put?: never;
        /**
         * Share a project
         * @description Adds an account to the project as `editor` or `viewer`. Owner only (others get 403); the Inbox cannot be shared (409 `INBOX_IMMUTABLE`). An unknown username is a 422 `UNKNOWN_USERNAME`, an existing member a 409 `ALREADY_MEMBER`. Send an `Idempotency-Key` to make retries safe.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["addProjectMember"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/projects/{id}/members/{user_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a member of a project
         * @description One member of a project you are a member of (any other project is a 404), with the `ETag` a role change can be made conditional on.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["getProjectMember"];
        put?: never;
        post?: never;
        /**
         * Remove a member, or leave a project
         * @description The owner removes anyone else; any member removes themself (leaves), except the owner (409 `OWNER_CANNOT_LEAVE`: hand the project over or delete it). The member loses access at once, and their assignments in the project are cleared. With `If-Match`, only when the member still has that `ETag` (else 412).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        delete: operations["removeProjectMember"];
        options?: never;
        head?: never;
        /**
         * Change a member's role
         * @description Owner only (others get 403). `role: owner` hands the project over: that member becomes its owner and you become an editor. Your own role as owner changes only that way (409 `OWNER_REQUIRED`). With `If-Match`, only when the member still has that `ETag` (else 412).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        patch: operations["updateProjectMember"];
        trace?: never;
    };
    "/v1/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Poll the change feed
         * @description The changes to tasks, projects and memberships in the projects you are a member of, oldest first, after `after`.
         *
         *     Poll again with `after=` the `next_after` of each page: a client that always does never misses an event and never sees one twice,
         *     however many writers commit at once and in whatever order their transactions finish (an event appears once every transaction
         *     older than its own has finished, so a long transaction elsewhere can hold the feed back for its duration).
         *
         *     You see the events of the projects you are a member of now, and the `project.deleted` and `member.removed` events that concern you.
         *     When you are added to a project, the `member.added` event about you is your cue to list its tasks: its events from before your place in the feed are not replayed.
         *     Events are kept `EVENTS_RETENTION_DAYS` days (30 unless the operator says otherwise): an `after` from before that is a 410 `SYNC_EXPIRED`.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["listEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/events/stream": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Follow the change feed live
         * @description The events of `GET /v1/events` as they happen, as server-sent events (`Accept: text/event-stream`; an `EventSource` in a browser).
         *
         *     It starts after `Last-Event-ID`, else after `after`, else now; from a place in the past it first sends every event since, then follows.
         *     The guarantee is the poll's: resuming after the last `id` received never misses an event and never repeats one.
         *     An event written through any instance of the service reaches every stream within a second.
         *
         *     A comment line (`: heartbeat`) comes every `EVENTS_STREAM_HEARTBEAT_MS` (15 s unless the operator says otherwise) so that proxies keep the connection open.
         *     The server may end a stream: when it shuts down, or when the client leaves too much unread. Reconnect after the `retry:` time with
         *     `Last-Event-ID` (an `EventSource` does both by itself). A stream is authorised once, when it opens.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["streamEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List your webhooks
         * @description Your webhooks, newest first (a user has at most 50). Secrets are never shown again.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["listWebhooks"];
        put?: never;
        /**
         * Create a webhook
         * @description From now on, the events of your projects (or of `project_id` alone) whose type is in `events` are POSTed to `url`, signed per Standard Webhooks: `webhook-id` (the event id, the same on every attempt), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's bytes after `whsec_`). The body is `{type, timestamp, data}`, `data` being the event's resource. An answer other than 2xx within `WEBHOOK_TIMEOUT_MS` (10 s) is retried on `WEBHOOK_RETRY_SCHEDULE`; `Retry-After` on 429 and 503 is honoured; redirects are not followed; 410 turns the webhook off. The `secret` is returned this once.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["createWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a webhook
         * @description One of your webhooks (anyone else's is a 404).
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["getWebhook"];
        put?: never;
        post?: never;
        /**
         * Delete a webhook
         * @description Deletes the webhook and its deliveries; attempts under way may still arrive.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        delete: operations["deleteWebhook"];
        options?: never;
        head?: never;
        /**
         * Change a webhook
         * @description A JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`. A new `url` is checked as at creation. Turning it off cancels the attempts still to come; turning it back on sends the events from then on.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        patch: operations["updateWebhook"];
        trace?: never;
    };
    "/v1/webhooks/{id}/ping": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Send a test event
         * @description Queues a `webhook.ping` event (`data`: `{webhook_id}`, `webhook-id`: `ping_…`), delivered and retried like any other, also while the webhook is off.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["pingWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/rotate-secret": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Rotate a webhook's secret
         * @description Returns a new secret. For 24 hours deliveries carry two signatures, space-separated in `webhook-signature`: one with the new secret and one with the old, so the receiver can switch at its pace.
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["rotateWebhookSecret"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a webhook's delivery attempts
         * @description Every attempt, newest first, one page at a time: those made (with the receiver's status, the error and the first bytes of its answer) and those to come.
         *
         *     **Requires:** scopes `tasks:read`. Access tokens and API keys are accepted.
         */
        get: operations["listWebhookDeliveries"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries/{delivery_id}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Deliver an event again
         * @description Delivers the attempt's event again, now: the attempt still to come is brought forward, or a new one follows the last (also after the retries ran out). The webhook must be on (409 `WEBHOOK_DISABLED` otherwise).
         *
         *     **Requires:** scopes `tasks:write`. Access tokens and API keys are accepted.
         */
        post: operations["retryWebhookDelivery"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * Priority
         * @description `low` < `medium` < `high`: sorting by priority follows this order, not the alphabet.
         * @enum {string}
         */
        Priority: "low" | "medium" | "high";
        /**
         * ProjectRole
         * @description A member's role in a project. `owner` (one per project) does everything, including sharing and deleting it; `editor` reads and writes its tasks and renames it; `viewer` only reads.
         * @enum {string}
         */
        ProjectRole: "owner" | "editor" | "viewer";
        /**
         * Role
         * @description `admin` may manage other users and holds the `admin` scope.
         * @example user
         */
        Role: "user" | "admin";
        /**
         * ApiKeyScope
         * @description What an API key may do: a subset of its owner's scopes.
         * @example tasks:read
         */
        ApiKeyScope: "tasks:read" | "tasks:write";
        /**
         * EventType
         * @description What changed: a task, a project or a membership was created (added), updated or deleted (removed).
         * @enum {string}
         */
        EventType: "task.created" | "task.updated" | "task.deleted" | "project.created" | "project.updated" | "project.deleted" | "member.added" | "member.updated" | "member.removed";
        /**
         * ValidationIssue
         * @example {
         *       "in": "body",
         *       "path": "/title",
         *       "message": "must NOT have fewer than 1 characters"
         *     }
         */
        ValidationIssue: {
            /**
             * @description Which part of the request the problem is in.
             * @example body
             */
            in: "body" | "query" | "path" | "header";
            /**
             * @description JSON pointer (RFC 6901) into that part of the request: `/title` is a field, the empty string the whole body or part.
             * @example /title
             */
            path: string;
            /** @example must NOT have fewer than 1 characters */
            message: string;
        };
        /**
         * Problem
         * @description RFC 9457 problem details, sent as `application/problem+json` with every non-2xx response.
         * @example {
         *       "type": "urn:tasks-api:problem:validation-failed",
         *       "title": "Validation failed",
         *       "status": 400,
         *       "detail": "body/title must NOT have fewer than 1 characters",
         *       "instance": "/v1/tasks",
         *       "code": "VALIDATION_FAILED",
         *       "request_id": "b3c1d2e4-5f60-4a7b-8c9d-0e1f2a3b4c5d",
         *       "errors": [
         *         {
         *           "in": "body",
         *           "path": "/title",
         *           "message": "must NOT have fewer than 1 characters"
         *         }
         *       ]
         *     }
         */
        Problem: {
            /**
             * @description A URI naming the problem type; one per `code`.
             * @example urn:tasks-api:problem:validation-failed
             */
            type: string;
            /**
             * @description Short, human-readable summary of the problem type.
             * @example Validation failed
             */
            title: string;
            /** @example 400 */
            status: number;
            /**
             * @description What went wrong in this occurrence.
             * @example body/title must NOT have fewer than 1 characters
             */
            detail?: string;
            /**
             * @description The request path this problem occurred on; `urn:tasks-api:request:<request_id>` when the request was refused before its path could be used (malformed, too long, not valid HTTP), so the input is never echoed.
             * @example /v1/tasks
             */
            instance: string;
            /**
             * @description Stable machine-readable error code from the service's catalogue.
             * @example VALIDATION_FAILED
             */
            code: string;
            /**
             * @description The `X-Request-Id` of the request, for support and log search.
             * @example b3c1d2e4-5f60-4a7b-8c9d-0e1f2a3b4c5d
             */
            request_id: string;
            /** @description Present on validation failures: one entry per problem found. */
            errors?: components["schemas"]["ValidationIssue"][];
            /**
             * @description RFC 6749 error code; present on the OAuth2 token endpoint only.
             * @example invalid_grant
             */
            error?: string;
            /**
             * @description RFC 6749 error description, on the OAuth2 token endpoint where `error` alone would not say what to do (e.g. two-factor required).
             * @example This account uses two-factor authentication: log in with POST /v1/auth/login and POST /v1/auth/login/mfa, then paste the access token.
             */
            error_description?: string;
            /**
             * @description With `MFA_REQUIRED` only: send it with a code to `POST /v1/auth/login/mfa` within 5 minutes. It is spent after 5 wrong codes.
             * @example mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C
             */
            mfa_token?: string;
        };
        /**
         * Health
         * @example {
         *       "status": "ok",
         *       "checks": {
         *         "database": "ok",
         *         "migrations": "ok",
         *         "shutting_down": false
         *       }
         *     }
         */
        Health: {
            /**
             * @example ok
             * @enum {string}
             */
            status: "ok";
            checks?: {
                /** @enum {string} */
                database: "ok";
                /** @enum {string} */
                migrations: "ok";
                /** @enum {boolean} */
                shutting_down: false;
            };
        };
        /**
         * User
         * @description A user account. The password hash never leaves the server.
         * @example {
         *       "id": "0b6f8d1c-2f4e-4a7b-9c3d-5e6f7a8b9c0d",
         *       "username": "alice",
         *       "email": "alice@example.com",
         *       "email_verified": true,
         *       "display_name": "Alice Liddell",
         *       "role": "user",
         *       "disabled": false,
         *       "mfa_enabled": false,
         *       "created_at": "2026-11-23T09:30:00.000Z",
         *       "updated_at": "2026-11-23T09:30:00.000Z"
         *     }
         */
        User: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * @description Letters, digits, `_`, `.` and `-`, starting with a letter or digit; unique regardless of case.
             * @example alice
             */
            username: string;
            /**
             * Format: email
             * @example alice@example.com
             */
            email: string | null;
            /**
             * @description Whether `email` was proven by following a mailed link (`POST /v1/users/me/email/verification`). A forgotten password can be reset only through a verified address. Changing the email clears it.
             * @example true
             */
            email_verified: boolean;
            /** @example Alice Liddell */
            display_name: string | null;
            role: components["schemas"]["Role"];
            /**
             * @description A disabled user cannot sign in; their tokens and keys stop working.
             * @example false
             */
            disabled: boolean;
            /**
             * @description Whether logging in also takes a TOTP code or a recovery code (`POST /v1/auth/login/mfa`). API keys are unaffected.
             * @example false
             */
            mfa_enabled: boolean;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            updated_at: string;
        };
        /**
         * SignupRequest
         * @example {
         *       "username": "alice",
         *       "password": "correct horse battery staple",
         *       "email": "alice@example.com"
         *     }
         */
        SignupRequest: {
            /**
             * @description Letters, digits, `_`, `.` and `-`, starting with a letter or digit; unique regardless of case.
             * @example alice
             */
            username: string;
            /**
             * @description 8 to 128 characters, not equal to the username. No composition rules (NIST SP 800-63B).
             * @example correct horse battery staple
             */
            password: string;
            /**
             * Format: email
             * @example alice@example.com
             */
            email?: string;
        };
        /**
         * LoginRequest
         * @example {
         *       "username": "alice",
         *       "password": "correct horse battery staple"
         *     }
         */
        LoginRequest: {
            /** @example alice */
            username: string;
            /** @example correct horse battery staple */
            password: string;
        };
        /**
         * TokenPair
         * @example {
         *       "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
         *       "token_type": "Bearer",
         *       "expires_in": 900,
         *       "refresh_token": "rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf",
         *       "scope": "tasks:read tasks:write"
         *     }
         */
        TokenPair: {
            /**
             * @description JWT to send as `Authorization: Bearer …`.
             * @example eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl
             */
            access_token: string;
            /** @enum {string} */
            token_type: "Bearer";
            /**
             * @description Seconds until the access token expires.
             * @example 900
             */
            expires_in: number;
            /**
             * @description Opaque token for `POST /v1/auth/refresh`; single use, rotated on every refresh. Its family (this login) expires `REFRESH_TOKEN_TTL` after the login.
             * @example rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf
             */
            refresh_token: string;
            /**
             * @description The scopes the access token grants, space-separated (RFC 6749 §5.1).
             * @example tasks:read tasks:write
             */
            scope: string;
        };
        /**
         * RefreshTokenRequest
         * @example {
         *       "refresh_token": "rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf"
         *     }
         */
        RefreshTokenRequest: {
            /**
             * @description The opaque refresh token from a TokenPair.
             * @example rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf
             */
            refresh_token: string;
        };
        /**
         * TokenRequest
         * @example {
         *       "grant_type": "password",
         *       "username": "alice",
         *       "password": "correct horse battery staple",
         *       "scope": "tasks:read tasks:write"
         *     }
         */
        TokenRequest: {
            /**
             * @description `password`, `refresh_token` or `authorization_code`.
             * @example password
             */
            grant_type: string;
            /**
             * @description With `grant_type=password`.
             * @example alice
             */
            username?: string;
            /**
             * @description With `grant_type=password`.
             * @example correct horse battery staple
             */
            password?: string;
            /**
             * @description With `grant_type=refresh_token`.
             * @example rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf
             */
            refresh_token?: string;
            /**
             * @description With `grant_type=authorization_code`: the one-time code a single sign-on ended with.
             * @example sso_4fJ8kQ2mZx7Lr1Tn9Wc3Yb6Hd0Ps5Ve
             */
            code?: string;
            /**
             * @description Space-separated scopes. Unknown scopes are refused (`invalid_scope`); the token is granted every scope of your role, which the response's `scope` lists.
             * @example tasks:read tasks:write
             */
            scope?: string;
            /**
             * @description Accepted and ignored (public client).
             * @example docs
             */
            client_id?: string;
            /**
             * @description Accepted and ignored (public client).
             * @example
             */
            client_secret?: string;
        } & {
            [key: string]: unknown;
        };
        /**
         * JsonWebKeySet
         * @description RFC 7517 JWK set of the public keys that verify this service's access tokens.
         * @example {
         *       "keys": [
         *         {
         *           "kty": "OKP",
         *           "crv": "Ed25519",
         *           "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
         *           "kid": "2026-12",
         *           "alg": "EdDSA",
         *           "use": "sig"
         *         }
         *       ]
         *     }
         */
        JsonWebKeySet: {
            /** @description Every key that may have signed an access token still valid: the signing key first. */
            keys: ({
                /**
                 * @description `OKP` (Ed25519) or `EC` (P-256).
                 * @example OKP
                 */
                kty: string;
                /**
                 * @description `Ed25519` or `P-256`.
                 * @example Ed25519
                 */
                crv: string;
                /**
                 * @description The public key (base64url).
                 * @example 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo
                 */
                x: string;
                /**
                 * @description The second coordinate of a P-256 key (base64url).
                 * @example x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0
                 */
                y?: string;
                /**
                 * @description The key id that access tokens name in their header.
                 * @example 2026-12
                 */
                kid: string;
                /**
                 * @description The only algorithm this key verifies: `EdDSA` or `ES256`.
                 * @example EdDSA
                 */
                alg: string;
                /** @enum {string} */
                use: "sig";
            } & {
                [key: string]: unknown;
            })[];
        };
        /**
         * UserSelfPatch
         * @description Fields of your own account you may change; `null` clears one, an absent field stays as it is. A different `email` is unverified until its link is followed.
         * @example {
         *       "display_name": "Alice Liddell",
         *       "email": "alice@example.com"
         *     }
         */
        UserSelfPatch: {
            /** @example Alice Liddell */
            display_name?: string | null;
            /**
             * Format: email
             * @example alice@example.com
             */
            email?: string | null;
        };
        /**
         * PasswordChange
         * @example {
         *       "current_password": "correct horse battery staple",
         *       "new_password": "a new long passphrase"
         *     }
         */
        PasswordChange: {
            /** @example correct horse battery staple */
            current_password: string;
            /**
             * @description 8 to 128 characters, not equal to the username. No composition rules (NIST SP 800-63B).
             * @example correct horse battery staple
             */
            new_password: string;
        };
        /**
         * UserAdminPatch
         * @description What an admin may change about a user. The last active admin cannot be demoted or disabled (409).
         * @example {
         *       "disabled": true
         *     }
         */
        UserAdminPatch: {
            role?: components["schemas"]["Role"];
            /**
             * @description Disabling revokes the user's refresh tokens at once; access tokens and API keys stop working within 60 s.
             * @example true
             */
            disabled?: boolean;
        };
        /**
         * UserPage
         * @description Users, newest first (ties broken by id).
         * @example {
         *       "items": [
         *         {
         *           "id": "0b6f8d1c-2f4e-4a7b-9c3d-5e6f7a8b9c0d",
         *           "username": "alice",
         *           "email": "alice@example.com",
         *           "email_verified": true,
         *           "display_name": "Alice Liddell",
         *           "role": "user",
         *           "disabled": false,
         *           "mfa_enabled": false,
         *           "created_at": "2026-11-23T09:30:00.000Z",
         *           "updated_at": "2026-11-23T09:30:00.000Z"
         *         }
         *       ],
         *       "next_cursor": null
         *     }
         */
        UserPage: {
            items: components["schemas"]["User"][];
            /**
             * @description Pass as `cursor` for the next page; null on the last page.
             * @example null
             */
            next_cursor: string | null;
        };
        /**
         * ApiKeyCreate
         * @example {
         *       "name": "CI exporter",
         *       "scopes": [
         *         "tasks:read"
         *       ],
         *       "expires_at": "2027-01-01T00:00:00.000Z"
         *     }
         */
        ApiKeyCreate: {
            /**
             * @description What the key is for, so you can tell keys apart.
             * @example CI exporter
             */
            name: string;
            /**
             * @description A subset of your own scopes. API keys never manage keys or users.
             * @example [
             *       "tasks:read"
             *     ]
             */
            scopes: components["schemas"]["ApiKeyScope"][];
            /**
             * Format: date-time
             * @description When the key stops working; null or absent for never. Must be in the future.
             * @example 2026-11-23T09:30:00.000Z
             */
            expires_at?: string | null;
            /**
             * @description Binds the key to a client certificate: the key then works only on a TLS connection that presents this certificate, verified (the server's own TLS with `TLS_CLIENT_CA`, or, with `TRUST_PROXY`, a proxy that verified it and forwards its fingerprint); elsewhere it is refused like an unknown key. The SHA-256 of the certificate (DER), hex, with or without colons, e.g. from `openssl x509 -in client.pem -noout -fingerprint -sha256`. Null or absent: any connection.
             * @example 3b:0f:7e:9c:1d:55:a2:4e:6f:80:91:c2:d3:e4:f5:06:17:28:39:4a:5b:6c:7d:8e:9f:a0:b1:c2:d3:e4:f5:06
             */
            client_cert_sha256?: string | null;
        };
        /**
         * ApiKey
         * @description An API key, without its secret: the key itself is shown only once, at creation.
         * @example {
         *       "id": "7d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f",
         *       "name": "CI exporter",
         *       "prefix": "tk_Jx8f2Lq0",
         *       "scopes": [
         *         "tasks:read"
         *       ],
         *       "expires_at": "2027-01-01T00:00:00.000Z",
         *       "last_used_at": null,
         *       "created_at": "2026-11-23T09:30:00.000Z",
         *       "client_cert_sha256": null
         *     }
         */
        ApiKey: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /** @example CI exporter */
            name: string;
            /**
             * @description The first characters of the key, to recognise it.
             * @example tk_Jx8f2Lq0
             */
            prefix: string;
            /**
             * @example [
             *       "tasks:read"
             *     ]
             */
            scopes: components["schemas"]["ApiKeyScope"][];
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            expires_at: string | null;
            /**
             * Format: date-time
             * @description When the key last authenticated a request; written at most once a minute.
             * @example 2026-11-23T09:30:00.000Z
             */
            last_used_at: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
            /**
             * @description The client certificate the key is bound to (SHA-256, lowercase hex without colons), or null when it works on any connection.
             * @example 3b0f7e9c1d55a24e6f8091c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f506
             */
            client_cert_sha256: string | null;
        };
        /**
         * ApiKeyCreated
         * @example {
         *       "id": "7d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f",
         *       "name": "CI exporter",
         *       "prefix": "tk_Jx8f2Lq0",
         *       "scopes": [
         *         "tasks:read"
         *       ],
         *       "expires_at": "2027-01-01T00:00:00.000Z",
         *       "last_used_at": null,
         *       "created_at": "2026-11-23T09:30:00.000Z",
         *       "client_cert_sha256": null,
         *       "key": "tk_Jx8f2Lq0h3V6uZ9yBcE1sKd4TnWm7RpA5gXoYiQvHl2"
         *     }
         */
        ApiKeyCreated: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /** @example CI exporter */
            name: string;
            /**
             * @description The first characters of the key, to recognise it.
             * @example tk_Jx8f2Lq0
             */
            prefix: string;
            /**
             * @example [
             *       "tasks:read"
             *     ]
             */
            scopes: components["schemas"]["ApiKeyScope"][];
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            expires_at: string | null;
            /**
             * Format: date-time
             * @description When the key last authenticated a request; written at most once a minute.
             * @example 2026-11-23T09:30:00.000Z
             */
            last_used_at: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
            /**
             * @description The client certificate the key is bound to (SHA-256, lowercase hex without colons), or null when it works on any connection.
             * @example 3b0f7e9c1d55a24e6f8091c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f506
             */
            client_cert_sha256: string | null;
            /**
             * @description The secret, shown this once: send it as `X-API-Key`. Only its SHA-256 is stored.
             * @example tk_Jx8f2Lq0h3V6uZ9yBcE1sKd4TnWm7RpA5gXoYiQvHl2
             */
            key: string;
        };
        /**
         * ApiKeyList
         * @description Your keys that are not revoked, newest first.
         * @example {
         *       "items": [
         *         {
         *           "id": "7d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f",
         *           "name": "CI exporter",
         *           "prefix": "tk_Jx8f2Lq0",
         *           "scopes": [
         *             "tasks:read"
         *           ],
         *           "expires_at": "2027-01-01T00:00:00.000Z",
         *           "last_used_at": null,
         *           "created_at": "2026-11-23T09:30:00.000Z",
         *           "client_cert_sha256": null
         *         }
         *       ]
         *     }
         */
        ApiKeyList: {
            items: components["schemas"]["ApiKey"][];
        };
        /**
         * Identity
         * @description An account of an OpenID provider that signs in to yours.
         * @example {
         *       "id": "3f6c1a2b-9d4e-4f70-8a1b-2c3d4e5f6a7b",
         *       "issuer": "https://accounts.example.com",
         *       "subject": "248289761001",
         *       "email": "alice@example.com",
         *       "created_at": "2026-01-15T09:30:00.000Z"
         *     }
         */
        Identity: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * @description The OpenID provider's `iss`.
             * @example https://accounts.example.com
             */
            issuer: string;
            /**
             * @description The provider's `sub`: who you are there. With `issuer`, the only thing single sign-on matches on.
             * @example 248289761001
             */
            subject: string;
            /**
             * @description The address the provider gave when the identity was linked, for you to tell identities apart.
             * @example alice@example.com
             */
            email: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
        };
        /**
         * IdentityList
         * @description Your linked identities, oldest first.
         * @example {
         *       "items": [
         *         {
         *           "id": "3f6c1a2b-9d4e-4f70-8a1b-2c3d4e5f6a7b",
         *           "issuer": "https://accounts.example.com",
         *           "subject": "248289761001",
         *           "email": "alice@example.com",
         *           "created_at": "2026-01-15T09:30:00.000Z"
         *         }
         *       ]
         *     }
         */
        IdentityList: {
            items: components["schemas"]["Identity"][];
        };
        /**
         * Task
         * @description A task in a project: every member of the project sees it, its owner and editors write it. Its `ETag` changes on every write.
         * @example {
         *       "id": "5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d",
         *       "project_id": "0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e",
         *       "title": "Renew passport",
         *       "description": "Book an appointment at the town hall; bring two photos.",
         *       "completed": false,
         *       "completed_at": null,
         *       "priority": "high",
         *       "due_at": "2026-12-01T17:00:00.000000Z",
         *       "tags": [
         *         "errands",
         *         "paperwork"
         *       ],
         *       "assignee_id": null,
         *       "created_by": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         *       "created_at": "2026-11-23T09:30:00.123456Z",
         *       "updated_at": "2026-11-23T09:30:00.123456Z"
         *     }
         */
        Task: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * Format: uuid
             * @description The project the task belongs to (your Inbox unless given on create). Changing it moves the task: you must be owner or editor of both projects, and an assignee who is not a member of the new project is cleared.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id: string;
            /**
             * @description 1 to 200 characters, not only white space.
             * @example Renew passport
             */
            title: string;
            /**
             * @description Free text, at most 10 000 characters, or null.
             * @example Book an appointment at the town hall; bring two photos.
             */
            description: string | null;
            /** @example false */
            completed: boolean;
            /**
             * Format: date-time
             * @description When the task was completed; null while it is not.
             * @example null
             */
            completed_at: string | null;
            priority: components["schemas"]["Priority"];
            /**
             * Format: date-time
             * @description When the task is due, or null.
             * @example 2026-12-01T17:00:00.000000Z
             */
            due_at: string | null;
            /**
             * @example [
             *       "errands",
             *       "paperwork"
             *     ]
             */
            tags: string[];
            /**
             * Format: uuid
             * @description The member of the task's project it is assigned to, or null. Assigning someone who is not a member of the project is a 422 `ASSIGNEE_NOT_MEMBER`; removing a member from the project clears their assignments there.
             * @example null
             */
            assignee_id: string | null;
            /**
             * Format: uuid
             * @description Who created the task (set by the server); null once that account is deleted.
             * @example 7c9e6679-7425-40de-944b-e07fc1f90ae7
             */
            created_by: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp in UTC, with microseconds.
             * @example 2026-11-23T09:30:00.123456Z
             */
            created_at: string;
            /**
             * Format: date-time
             * @description Moves forward on every write.
             * @example 2026-11-23T09:30:00.123456Z
             */
            updated_at: string;
        };
        /**
         * TaskCreate
         * @description A new task. Omitted fields take their defaults: your Inbox, nobody assigned, description and due_at null, priority `medium`, no tags, not completed. Unknown fields are refused.
         * @example {
         *       "title": "Renew passport",
         *       "priority": "high",
         *       "due_at": "2026-12-01T17:00:00Z",
         *       "tags": [
         *         "errands"
         *       ]
         *     }
         */
        TaskCreate: {
            /**
             * Format: uuid
             * @description The project the task belongs to (your Inbox unless given on create). Changing it moves the task: you must be owner or editor of both projects, and an assignee who is not a member of the new project is cleared.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id?: string;
            /**
             * Format: uuid
             * @description The member of the task's project it is assigned to, or null. Assigning someone who is not a member of the project is a 422 `ASSIGNEE_NOT_MEMBER`; removing a member from the project clears their assignments there.
             * @example null
             */
            assignee_id?: string | null;
            /**
             * @description 1 to 200 characters, not only white space.
             * @example Renew passport
             */
            title: string;
            /**
             * @description Free text, at most 10 000 characters, or null.
             * @example Book an appointment at the town hall; bring two photos.
             */
            description?: string | null;
            priority?: components["schemas"]["Priority"];
            /**
             * Format: date-time
             * @description When the task is due, or null.
             * @example 2026-12-01T17:00:00Z
             */
            due_at?: string | null;
            /**
             * @description At most 20 distinct tags, kept in the order given.
             * @example [
             *       "errands",
             *       "paperwork"
             *     ]
             */
            tags?: string[];
            /**
             * @description Setting it to true stamps `completed_at` (an already completed task keeps its stamp); false clears `completed_at`.
             * @example false
             */
            completed?: boolean;
        };
        /**
         * TaskReplace
         * @description Every writable field of a task. Omitted fields are reset to their defaults (as on create), not kept, except `project_id` and `assignee_id`: omitted, they are kept, so that a client that predates projects neither moves nor unassigns tasks. Unknown fields are refused.
         * @example {
         *       "title": "Renew passport",
         *       "description": null,
         *       "priority": "medium",
         *       "due_at": null,
         *       "tags": [],
         *       "completed": true
         *     }
         */
        TaskReplace: {
            /**
             * Format: uuid
             * @description The project the task belongs to (your Inbox unless given on create). Changing it moves the task: you must be owner or editor of both projects, and an assignee who is not a member of the new project is cleared.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id?: string;
            /**
             * Format: uuid
             * @description The member of the task's project it is assigned to, or null. Assigning someone who is not a member of the project is a 422 `ASSIGNEE_NOT_MEMBER`; removing a member from the project clears their assignments there.
             * @example null
             */
            assignee_id?: string | null;
            /**
             * @description 1 to 200 characters, not only white space.
             * @example Renew passport
             */
            title: string;
            /**
             * @description Free text, at most 10 000 characters, or null.
             * @example Book an appointment at the town hall; bring two photos.
             */
            description?: string | null;
            priority?: components["schemas"]["Priority"];
            /**
             * Format: date-time
             * @description When the task is due, or null.
             * @example 2026-12-01T17:00:00Z
             */
            due_at?: string | null;
            /**
             * @description At most 20 distinct tags, kept in the order given.
             * @example [
             *       "errands",
             *       "paperwork"
             *     ]
             */
            tags?: string[];
            /**
             * @description Setting it to true stamps `completed_at` (an already completed task keeps its stamp); false clears `completed_at`.
             * @example false
             */
            completed?: boolean;
        };
        /**
         * TaskPatch
         * @description A JSON merge patch (RFC 7396): fields present are set, absent ones kept; `null` clears the nullable fields (description, due_at). Unknown fields are refused.
         * @example {
         *       "completed": true
         *     }
         */
        TaskPatch: {
            /**
             * Format: uuid
             * @description The project the task belongs to (your Inbox unless given on create). Changing it moves the task: you must be owner or editor of both projects, and an assignee who is not a member of the new project is cleared.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id?: string;
            /**
             * Format: uuid
             * @description The member of the task's project it is assigned to, or null. Assigning someone who is not a member of the project is a 422 `ASSIGNEE_NOT_MEMBER`; removing a member from the project clears their assignments there.
             * @example null
             */
            assignee_id?: string | null;
            /**
             * @description 1 to 200 characters, not only white space.
             * @example Renew passport
             */
            title?: string;
            /**
             * @description Free text, at most 10 000 characters, or null.
             * @example Book an appointment at the town hall; bring two photos.
             */
            description?: string | null;
            priority?: components["schemas"]["Priority"];
            /**
             * Format: date-time
             * @description When the task is due, or null.
             * @example 2026-12-01T17:00:00Z
             */
            due_at?: string | null;
            /**
             * @description At most 20 distinct tags, kept in the order given.
             * @example [
             *       "errands",
             *       "paperwork"
             *     ]
             */
            tags?: string[];
            /**
             * @description Setting it to true stamps `completed_at` (an already completed task keeps its stamp); false clears `completed_at`.
             * @example false
             */
            completed?: boolean;
        };
        /**
         * TaskPage
         * @description One page of your tasks.
         * @example {
         *       "items": [
         *         {
         *           "id": "5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d",
         *           "project_id": "0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e",
         *           "title": "Renew passport",
         *           "description": "Book an appointment at the town hall; bring two photos.",
         *           "completed": false,
         *           "completed_at": null,
         *           "priority": "high",
         *           "due_at": "2026-12-01T17:00:00.000000Z",
         *           "tags": [
         *             "errands",
         *             "paperwork"
         *           ],
         *           "assignee_id": null,
         *           "created_by": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         *           "created_at": "2026-11-23T09:30:00.123456Z",
         *           "updated_at": "2026-11-23T09:30:00.123456Z"
         *         }
         *       ],
         *       "next_cursor": "WyIyMDI2LTExLTIzVDA5OjMwOjAwLjEyMzQ1NloiLCI1ZjBjNmE0ZS04YTViLTRhNTMtOWE4ZS0yYThmN2Y5YzFiMmQiXQ.3q2-7wXxVYk0a1bC2dE3fA"
         *     }
         */
        TaskPage: {
            /** @description At most `limit` tasks, in the requested order. */
            items: components["schemas"]["Task"][];
            /**
             * @description Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.
             * @example WyIyMDI2LTExLTIzVDA5OjMwOjAwLjEyMzQ1NloiLCI1ZjBjNmE0ZS04YTViLTRhNTMtOWE4ZS0yYThmN2Y5YzFiMmQiXQ.3q2-7wXxVYk0a1bC2dE3fA
             */
            next_cursor: string | null;
        };
        /**
         * Project
         * @description A project: a list of tasks shared by its members. `role` is yours. Its `ETag` and `updated_at` change when it is renamed, its description changes, or its membership does (a member added, removed or given another role, a handover of ownership included), since each of these changes the project as its members see it.
         * @example {
         *       "id": "0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e",
         *       "name": "Kitchen renovation",
         *       "description": "Everything for the new kitchen, by the end of March.",
         *       "is_inbox": false,
         *       "owner_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         *       "role": "owner",
         *       "member_count": 2,
         *       "created_at": "2026-11-23T09:30:00.123456Z",
         *       "updated_at": "2026-11-23T09:30:00.123456Z"
         *     }
         */
        Project: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * @description 1 to 100 characters, not only white space. Names need not be unique.
             * @example Kitchen renovation
             */
            name: string;
            /**
             * @description Free text, at most 2 000 characters, or null.
             * @example Everything for the new kitchen, by the end of March.
             */
            description: string | null;
            /**
             * @description Your Inbox: made with your account, where tasks go when no project is given. It cannot be renamed, shared or deleted.
             * @example false
             */
            is_inbox: boolean;
            /**
             * Format: uuid
             * @description The one member whose role is `owner`.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            owner_id: string;
            role: components["schemas"]["ProjectRole"];
            /**
             * @description How many members the project has, the owner included.
             * @example 2
             */
            member_count: number;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp in UTC, with microseconds.
             * @example 2026-11-23T09:30:00.123456Z
             */
            created_at: string;
            /**
             * Format: date-time
             * @description Moves forward when the project is renamed, its description changes, or its membership does.
             * @example 2026-11-23T09:30:00.123456Z
             */
            updated_at: string;
        };
        /**
         * ProjectCreate
         * @description A new project, owned by you. Unknown fields are refused.
         * @example {
         *       "name": "Kitchen renovation",
         *       "description": "Everything for the new kitchen, by the end of March."
         *     }
         */
        ProjectCreate: {
            /**
             * @description 1 to 100 characters, not only white space. Names need not be unique.
             * @example Kitchen renovation
             */
            name: string;
            /**
             * @description Free text, at most 2 000 characters, or null.
             * @example Everything for the new kitchen, by the end of March.
             */
            description?: string | null;
        };
        /**
         * ProjectPatch
         * @description A JSON merge patch (RFC 7396) of a project: fields present are set, absent ones kept; `null` clears the description. The Inbox keeps its name (409 `INBOX_IMMUTABLE`). Unknown fields are refused.
         * @example {
         *       "name": "Kitchen and bathroom"
         *     }
         */
        ProjectPatch: {
            /**
             * @description 1 to 100 characters, not only white space. Names need not be unique.
             * @example Kitchen renovation
             */
            name?: string;
            /**
             * @description Free text, at most 2 000 characters, or null.
             * @example Everything for the new kitchen, by the end of March.
             */
            description?: string | null;
        };
        /**
         * ProjectPage
         * @description One page of the projects you are a member of.
         * @example {
         *       "items": [
         *         {
         *           "id": "0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e",
         *           "name": "Kitchen renovation",
         *           "description": "Everything for the new kitchen, by the end of March.",
         *           "is_inbox": false,
         *           "owner_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         *           "role": "owner",
         *           "member_count": 2,
         *           "created_at": "2026-11-23T09:30:00.123456Z",
         *           "updated_at": "2026-11-23T09:30:00.123456Z"
         *         }
         *       ],
         *       "next_cursor": null
         *     }
         */
        ProjectPage: {
            /** @description At most `limit` projects, in the requested order. */
            items: components["schemas"]["Project"][];
            /**
             * @description Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.
             * @example WyJLaXRjaGVuIiwiMGI2ZjJjMWUtM2Q0YS00YjVjLThkOWUtMWYyYTNiNGM1ZDZlIl0.3q2-7wXxVYk0a1bC2dE3fA
             */
            next_cursor: string | null;
        };
        /**
         * Member
         * @description A member of a project and their role. Its `ETag` changes when the role does.
         * @example {
         *       "user_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         *       "username": "bob",
         *       "display_name": "Bob Builder",
         *       "role": "editor",
         *       "added_at": "2026-11-24T10:00:00.000000Z"
         *     }
         */
        Member: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            user_id: string;
            /**
             * @description Letters, digits, `_`, `.` and `-`, starting with a letter or digit; unique regardless of case.
             * @example alice
             */
            username: string;
            /** @example Alice Liddell */
            display_name: string | null;
            role: components["schemas"]["ProjectRole"];
            /**
             * Format: date-time
             * @description When they joined the project.
             * @example 2026-11-23T09:30:00.123456Z
             */
            added_at: string;
        };
        /**
         * MemberCreate
         * @description Shares the project with an account. An unknown username is a 422 `UNKNOWN_USERNAME`; someone already a member, a 409 `ALREADY_MEMBER`. Unknown fields are refused.
         * @example {
         *       "username": "bob",
         *       "role": "editor"
         *     }
         */
        MemberCreate: {
            /**
             * @description The username of the account to add (any case).
             * @example alice
             */
            username: string;
            /**
             * @description The new member's role: `editor` or `viewer` (ownership is handed over by changing an existing member's role to `owner`).
             * @example editor
             * @enum {string}
             */
            role: "editor" | "viewer";
        };
        /**
         * MemberPatch
         * @description A member's new role. `owner` hands the project over: that member becomes its owner and you become an editor. The owner's own role changes only that way (409 `OWNER_REQUIRED` otherwise). Unknown fields are refused.
         * @example {
         *       "role": "viewer"
         *     }
         */
        MemberPatch: {
            role: components["schemas"]["ProjectRole"];
        };
        /**
         * MemberPage
         * @description One page of a project's members, in the order they joined (the owner who made it first).
         * @example {
         *       "items": [
         *         {
         *           "user_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         *           "username": "bob",
         *           "display_name": "Bob Builder",
         *           "role": "editor",
         *           "added_at": "2026-11-24T10:00:00.000000Z"
         *         }
         *       ],
         *       "next_cursor": null
         *     }
         */
        MemberPage: {
            /** @description At most `limit` members, in the order they joined. */
            items: components["schemas"]["Member"][];
            /**
             * @description Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.
             * @example WyJLaXRjaGVuIiwiMGI2ZjJjMWUtM2Q0YS00YjVjLThkOWUtMWYyYTNiNGM1ZDZlIl0.3q2-7wXxVYk0a1bC2dE3fA
             */
            next_cursor: string | null;
        };
        /**
         * Event
         * @description A change to a task, a project or a membership, recorded in the same transaction as the change.
         */
        Event: {
            /**
             * @description The event's id and its place in the feed (opaque): resume after it with `after=`. Webhook deliveries carry it as `webhook-id`.
             * @example 7345-1042
             */
            id: string;
            type: components["schemas"]["EventType"];
            /**
             * Format: date-time
             * @description When the change was made: the start of its transaction, RFC 3339 in UTC with microseconds.
             * @example 2026-11-23T09:30:00.123456Z
             */
            occurred_at: string;
            /**
             * Format: uuid
             * @description Who made the change; null when no one did (an account's deletion removes its memberships and its projects).
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            actor_id: string | null;
            /**
             * Format: uuid
             * @description The project the change happened in (for a project event, the project itself).
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id: string;
            /**
             * @description The resource after the change, as the API returns it: a `Task` for `task.created` and `task.updated`, a `Project` for `project.created` and `project.updated` (its `role` is the actor's), a `Member` for `member.*` (for `member.removed`, the member as they were). For `task.deleted` and `project.deleted`, only `{id}`: the tasks of a deleted project are gone with it, without an event each.
             * @example {
             *       "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
             *       "title": "Buy milk",
             *       "completed": true
             *     }
             */
            data: {
                [key: string]: unknown;
            };
        };
        /**
         * EventPage
         * @description A page of the change feed.
         */
        EventPage: {
            /** @description Oldest first; fewer than `limit` when you have caught up. */
            items: components["schemas"]["Event"][];
            /**
             * @description Always set: poll again with `after=` this value. It may be past the last item when you have caught up.
             * @example 7345-1042
             */
            next_after: string;
        };
        /**
         * Webhook
         * @description An endpoint that is sent the events of your projects as they happen, signed per Standard Webhooks.
         * @example {
         *       "id": "2b1f4a0e-6c3d-4e5f-8a9b-0c1d2e3f4a5b",
         *       "url": "https://hooks.example.com/tasks",
         *       "events": [
         *         "task.created",
         *         "task.updated"
         *       ],
         *       "project_id": null,
         *       "enabled": true,
         *       "disabled_reason": null,
         *       "description": "Mirror to the team chat",
         *       "created_at": "2026-11-23T09:30:00.000Z",
         *       "updated_at": "2026-11-23T09:30:00.000Z"
         *     }
         */
        Webhook: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * Format: uri
             * @description Where events are POSTed: `https`, on a host whose every address is public (not loopback, private, link-local or a metadata address), checked now and at each delivery; else 422 `WEBHOOK_URL_REFUSED`. The operator may allow private networks and `http` for development (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
             * @example https://hooks.example.com/tasks
             */
            url: string;
            /**
             * @description The event types to send, or `["*"]` for all of them.
             * @example [
             *       "task.created",
             *       "task.updated"
             *     ]
             */
            events: (components["schemas"]["EventType"] | "*")[];
            /**
             * Format: uuid
             * @description The one project whose events are sent; null for every project you are a member of.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id: string | null;
            /** @description Whether events are sent. The service turns it off when the receiver answers 410 Gone, or after 5 days of failed attempts (see `disabled_reason`); events while it is off are not sent later. */
            enabled: boolean;
            /**
             * @description Why the service turned the webhook off; null when it is on or you turned it off.
             * @example null
             */
            disabled_reason: string | null;
            /**
             * @description What the webhook is for.
             * @example Mirror to the team chat
             */
            description: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            updated_at: string;
        };
        /**
         * WebhookCreate
         * @description A webhook to create. It is sent the events that happen from its creation on, those you may see when each is delivered.
         * @example {
         *       "url": "https://hooks.example.com/tasks",
         *       "events": [
         *         "task.created",
         *         "task.updated"
         *       ],
         *       "description": "Mirror to the team chat"
         *     }
         */
        WebhookCreate: {
            /**
             * Format: uri
             * @description Where events are POSTed: `https`, on a host whose every address is public (not loopback, private, link-local or a metadata address), checked now and at each delivery; else 422 `WEBHOOK_URL_REFUSED`. The operator may allow private networks and `http` for development (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
             * @example https://hooks.example.com/tasks
             */
            url: string;
            /**
             * @description The event types to send, or `["*"]` for all of them.
             * @example [
             *       "task.created",
             *       "task.updated"
             *     ]
             */
            events: (components["schemas"]["EventType"] | "*")[];
            /**
             * Format: uuid
             * @description Only this project's events (you must be a member: else 404 `PROJECT_NOT_FOUND`); omitted or null for every project you are a member of, now and later.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id?: string | null;
            /**
             * @description What the webhook is for.
             * @example Mirror to the team chat
             */
            description?: string | null;
        };
        /**
         * WebhookCreated
         * @description A new webhook, with its signing secret: store it now, it is never shown again (rotate it to get a new one).
         * @example {
         *       "id": "2b1f4a0e-6c3d-4e5f-8a9b-0c1d2e3f4a5b",
         *       "url": "https://hooks.example.com/tasks",
         *       "events": [
         *         "task.created",
         *         "task.updated"
         *       ],
         *       "project_id": null,
         *       "enabled": true,
         *       "disabled_reason": null,
         *       "description": "Mirror to the team chat",
         *       "created_at": "2026-11-23T09:30:00.000Z",
         *       "updated_at": "2026-11-23T09:30:00.000Z",
         *       "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
         *     }
         */
        WebhookCreated: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * Format: uri
             * @description Where events are POSTed: `https`, on a host whose every address is public (not loopback, private, link-local or a metadata address), checked now and at each delivery; else 422 `WEBHOOK_URL_REFUSED`. The operator may allow private networks and `http` for development (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
             * @example https://hooks.example.com/tasks
             */
            url: string;
            /**
             * @description The event types to send, or `["*"]` for all of them.
             * @example [
             *       "task.created",
             *       "task.updated"
             *     ]
             */
            events: (components["schemas"]["EventType"] | "*")[];
            /**
             * Format: uuid
             * @description The one project whose events are sent; null for every project you are a member of.
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            project_id: string | null;
            /** @description Whether events are sent. The service turns it off when the receiver answers 410 Gone, or after 5 days of failed attempts (see `disabled_reason`); events while it is off are not sent later. */
            enabled: boolean;
            /**
             * @description Why the service turned the webhook off; null when it is on or you turned it off.
             * @example null
             */
            disabled_reason: string | null;
            /**
             * @description What the webhook is for.
             * @example Mirror to the team chat
             */
            description: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            updated_at: string;
            /**
             * @description The signing secret, shown this once: `whsec_` and the base64 of 32 random bytes. Verify each delivery's `webhook-signature` with it (Standard Webhooks).
             * @example whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
             */
            secret: string;
        };
        /**
         * WebhookPatch
         * @description Fields to change (JSON merge patch). Unknown fields are refused.
         * @example {
         *       "enabled": false
         *     }
         */
        WebhookPatch: {
            /**
             * Format: uri
             * @description Where events are POSTed: `https`, on a host whose every address is public (not loopback, private, link-local or a metadata address), checked now and at each delivery; else 422 `WEBHOOK_URL_REFUSED`. The operator may allow private networks and `http` for development (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
             * @example https://hooks.example.com/tasks
             */
            url?: string;
            /**
             * @description The event types to send, or `["*"]` for all of them.
             * @example [
             *       "task.created",
             *       "task.updated"
             *     ]
             */
            events?: (components["schemas"]["EventType"] | "*")[];
            /** @description Turn it off, or back on (which also clears `disabled_reason`). Turning it off cancels the attempts still to come. */
            enabled?: boolean;
            /**
             * @description What the webhook is for.
             * @example Mirror to the team chat
             */
            description?: string | null;
        };
        /**
         * WebhookList
         * @description Your webhooks.
         * @example {
         *       "items": [
         *         {
         *           "id": "2b1f4a0e-6c3d-4e5f-8a9b-0c1d2e3f4a5b",
         *           "url": "https://hooks.example.com/tasks",
         *           "events": [
         *             "task.created",
         *             "task.updated"
         *           ],
         *           "project_id": null,
         *           "enabled": true,
         *           "disabled_reason": null,
         *           "description": "Mirror to the team chat",
         *           "created_at": "2026-11-23T09:30:00.000Z",
         *           "updated_at": "2026-11-23T09:30:00.000Z"
         *         }
         *       ]
         *     }
         */
        WebhookList: {
            /** @description Your webhooks, newest first (at most 50). */
            items: components["schemas"]["Webhook"][];
        };
        /**
         * WebhookSecret
         * @description The new signing secret. For 24 hours deliveries carry two signatures, one with each secret, so receivers can switch over.
         * @example {
         *       "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
         *     }
         */
        WebhookSecret: {
            /**
             * @description The signing secret, shown this once: `whsec_` and the base64 of 32 random bytes. Verify each delivery's `webhook-signature` with it (Standard Webhooks).
             * @example whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
             */
            secret: string;
        };
        /**
         * Delivery
         * @description One delivery attempt of an event to a webhook.
         * @example {
         *       "id": "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b",
         *       "event_id": "7345-1042",
         *       "event_type": "task.created",
         *       "attempt": 2,
         *       "status": "failed",
         *       "status_code": 503,
         *       "error": "the receiver answered 503",
         *       "duration_ms": 41,
         *       "response_excerpt": "Service Unavailable",
         *       "attempted_at": "2026-11-23T09:30:05.120Z",
         *       "next_attempt_at": "2026-11-23T09:35:04.000Z",
         *       "created_at": "2026-11-23T09:30:05.000Z"
         *     }
         */
        Delivery: {
            /**
             * Format: uuid
             * @example 5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d
             */
            id: string;
            /**
             * @description The event's id, sent as `webhook-id` (the same on every attempt); `ping_…` for a ping.
             * @example 7345-1042
             */
            event_id: string;
            /**
             * @description The event's type, or `webhook.ping`.
             * @example task.created
             */
            event_type: string;
            /**
             * @description Which attempt at this event this is, from 1.
             * @example 2
             */
            attempt: number;
            /**
             * @description `pending`: not made yet (due at `next_attempt_at`); `succeeded`: the receiver answered 2xx; `failed`: anything else, a timeout or a connection error (retried at `next_attempt_at` unless null); `cancelled`: not made, the webhook having been turned off or the event no longer yours to see.
             * @example failed
             */
            status: "pending" | "succeeded" | "failed" | "cancelled";
            /**
             * @description The receiver's HTTP status; null when it did not answer.
             * @example 503
             */
            status_code: number | null;
            /**
             * @description What went wrong, for people.
             * @example the receiver answered 503
             */
            error: string | null;
            /**
             * @description How long the attempt took.
             * @example 41
             */
            duration_ms: number | null;
            /**
             * @description The first 1 024 bytes of the receiver's answer, as text.
             * @example Service Unavailable
             */
            response_excerpt: string | null;
            /**
             * Format: date-time
             * @description When the attempt was made; null while pending.
             * @example 2026-11-23T09:30:00.000Z
             */
            attempted_at: string | null;
            /**
             * Format: date-time
             * @description When this attempt is due (pending), or when the next one is (failed); null when none is to come.
             * @example 2026-11-23T09:30:00.000Z
             */
            next_attempt_at: string | null;
            /**
             * Format: date-time
             * @description RFC 3339 timestamp, UTC
             * @example 2026-11-23T09:30:00.000Z
             */
            created_at: string;
        };
        /**
         * DeliveryPage
         * @description One page of a webhook's delivery attempts, newest first.
         * @example {
         *       "items": [
         *         {
         *           "id": "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b",
         *           "event_id": "7345-1042",
         *           "event_type": "task.created",
         *           "attempt": 2,
         *           "status": "failed",
         *           "status_code": 503,
         *           "error": "the receiver answered 503",
         *           "duration_ms": 41,
         *           "response_excerpt": "Service Unavailable",
         *           "attempted_at": "2026-11-23T09:30:05.120Z",
         *           "next_attempt_at": "2026-11-23T09:35:04.000Z",
         *           "created_at": "2026-11-23T09:30:05.000Z"
         *         }
         *       ],
         *       "next_cursor": null
         *     }
         */
        DeliveryPage: {
            /** @description At most `limit` attempts, newest first. */
            items: components["schemas"]["Delivery"][];
            /**
             * @description Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.
             * @example null
             */
            next_cursor: string | null;
        };
        /**
         * EmailVerification
         * @example {
         *       "token": "ev_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA"
         *     }
         */
        EmailVerification: {
            /**
             * @description The token from the mailed link (its `token` parameter).
             * @example ev_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA
             */
            token: string;
        };
        /**
         * PasswordForgotten
         * @example {
         *       "email": "alice@example.com"
         *     }
         */
        PasswordForgotten: {
            /**
             * Format: email
             * @example alice@example.com
             */
            email: string;
        };
        /**
         * PasswordReset
         * @example {
         *       "token": "pr_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA",
         *       "new_password": "a new long passphrase"
         *     }
         */
        PasswordReset: {
            /**
             * @description The token from the mailed link (its `token` parameter).
             * @example pr_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA
             */
            token: string;
            /**
             * @description 8 to 128 characters, not equal to the username. No composition rules (NIST SP 800-63B).
             * @example correct horse battery staple
             */
            new_password: string;
        };
        /**
         * TotpEnrolmentRequest
         * @example {
         *       "current_password": "correct horse battery staple"
         *     }
         */
        TotpEnrolmentRequest: {
            /**
             * @description Your password, again: a stolen access token alone cannot change your second factor.
             * @example correct horse battery staple
             */
            current_password: string;
        };
        /**
         * TotpEnrolment
         * @description A TOTP secret being enrolled. Two-factor is not on until `POST /v1/users/me/mfa/totp/activate` proves your app has it; starting again replaces the secret.
         * @example {
         *       "secret": "R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK",
         *       "otpauth_uri": "otpauth://totp/Tasks%20API:alice?secret=R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK&issuer=Tasks%20API"
         *     }
         */
        TotpEnrolment: {
            /**
             * @description The shared secret, base32 (160 bits), for apps that take it typed in. Shown during enrolment only.
             * @example R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK
             */
            secret: string;
            /**
             * @description The `otpauth://totp/…` URI to show as a QR code: SHA-1, 6 digits, 30 s.
             * @example otpauth://totp/Tasks%20API:alice?secret=R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK&issuer=Tasks%20API
             */
            otpauth_uri: string;
        };
        /**
         * TotpActivation
         * @example {
         *       "code": "492039"
         *     }
         */
        TotpActivation: {
            /**
             * @description The 6-digit code your authenticator app shows now (RFC 6238: SHA-1, 30 s). Codes of the step before and after are accepted too, each only once.
             * @example 492039
             */
            code: string;
        };
        /**
         * RecoveryCodes
         * @example {
         *       "recovery_codes": [
         *         "k7m2p-x9qrt-4hv3n",
         *         "a3b4c-d5e6f-g7h8j",
         *         "mnpqr-stuvw-xyz23",
         *         "45678-9abcd-efghj",
         *         "kmnpq-rstuv-wxyz2",
         *         "3456a-bcdef-ghjkm",
         *         "npqrs-tuvwx-yz234",
         *         "56789-abcde-fghjk",
         *         "mnpqr-23456-stuvw",
         *         "xyz78-9abcd-efghj"
         *       ]
         *     }
         */
        RecoveryCodes: {
            /** @description Ten codes, each good for one login without your authenticator. Shown this once (only their hashes are kept): store them somewhere safe. New ones void these. */
            recovery_codes: string[];
        };
        /**
         * MfaConfirmation
         * @example {
         *       "current_password": "correct horse battery staple",
         *       "code": "492039"
         *     }
         */
        MfaConfirmation: {
            /**
             * @description Your password, again: a stolen access token alone cannot change your second factor.
             * @example correct horse battery staple
             */
            current_password: string;
            /** @description A code from your authenticator app, or one of your recovery codes (which it then uses up). */
            code: string;
        };
        /**
         * MfaLogin
         * @description The second step of a two-factor login: the `mfa_token` with either a `code` or a `recovery_code`.
         * @example {
         *       "mfa_token": "mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C",
         *       "code": "492039"
         *     }
         */
        MfaLogin: {
            /**
             * @description The `mfa_token` of the `MFA_REQUIRED` answer to `POST /v1/auth/login`.
             * @example mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C
             */
            mfa_token: string;
            /**
             * @description The 6-digit code your authenticator app shows now (RFC 6238: SHA-1, 30 s). Codes of the step before and after are accepted too, each only once.
             * @example 492039
             */
            code: string;
        } | {
            /**
             * @description The `mfa_token` of the `MFA_REQUIRED` answer to `POST /v1/auth/login`.
             * @example mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C
             */
            mfa_token: string;
            /**
             * @description One of your recovery codes (`k7m2p-x9qrt-4hv3n`); each works once. Dashes, spaces and case do not matter.
             * @example k7m2p-x9qrt-4hv3n
             */
            recovery_code: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: {
        /** @description The request id: the one you sent when it is 1 to 128 letters, digits or `._:-`, else a new one. Problems repeat it as `request_id`; quote it when reporting a problem. */
        "X-Request-Id": string;
        /** @description Requests allowed per window (IETF RateLimit header fields draft). */
        "RateLimit-Limit": number;
        /** @description Requests left in the current window. */
        "RateLimit-Remaining": number;
        /** @description Seconds until the current window ends. */
        "RateLimit-Reset": number;
        /** @description Seconds to wait before trying again. */
        "Retry-After": number;
        /** @description What credentials to send (RFC 6750): `Bearer realm="tasks-api"` or, for an API key, `ApiKey realm="tasks-api"`; with `error="…"` when the ones sent were refused, and on a 403 with `error="insufficient_scope"` and the missing `scope` when that is why. */
        "WWW-Authenticate": string;
        /** @description The URL of the created resource. */
        Location: string;
        /** @description Strong entity tag of the task's current version; send it back in `If-Match` or `If-None-Match`. */
        ETag: string;
        /** @description `<…>; rel="next"`: the URL of the next page (RFC 8288), present when `next_cursor` is not null. */
        Link: string;
        /** @description How long the response may be cached (RFC 9111). */
        "Cache-Control": string;
        /** @description `true` when this response is the replay of an earlier request with the same `Idempotency-Key`. */
        "Idempotent-Replayed": string;
    };
    pathItems: never;
}
export type Priority = components['schemas']['Priority'];
export type ProjectRole = components['schemas']['ProjectRole'];
export type Role = components['schemas']['Role'];
export type ApiKeyScope = components['schemas']['ApiKeyScope'];
export type EventType = components['schemas']['EventType'];
export type ValidationIssue = components['schemas']['ValidationIssue'];
export type Problem = components['schemas']['Problem'];
export type Health = components['schemas']['Health'];
export type User = components['schemas']['User'];
export type SignupRequest = components['schemas']['SignupRequest'];
export type LoginRequest = components['schemas']['LoginRequest'];
export type TokenPair = components['schemas']['TokenPair'];
export type RefreshTokenRequest = components['schemas']['RefreshTokenRequest'];
export type TokenRequest = components['schemas']['TokenRequest'];
export type JsonWebKeySet = components['schemas']['JsonWebKeySet'];
export type UserSelfPatch = components['schemas']['UserSelfPatch'];
export type PasswordChange = components['schemas']['PasswordChange'];
export type UserAdminPatch = components['schemas']['UserAdminPatch'];
export type UserPage = components['schemas']['UserPage'];
export type ApiKeyCreate = components['schemas']['ApiKeyCreate'];
export type ApiKey = components['schemas']['ApiKey'];
export type ApiKeyCreated = components['schemas']['ApiKeyCreated'];
export type ApiKeyList = components['schemas']['ApiKeyList'];
export type Identity = components['schemas']['Identity'];
export type IdentityList = components['schemas']['IdentityList'];
export type Task = components['schemas']['Task'];
export type TaskCreate = components['schemas']['TaskCreate'];
export type TaskReplace = components['schemas']['TaskReplace'];
export type TaskPatch = components['schemas']['TaskPatch'];
export type TaskPage = components['schemas']['TaskPage'];
export type Project = components['schemas']['Project'];
export type ProjectCreate = components['schemas']['ProjectCreate'];
export type ProjectPatch = components['schemas']['ProjectPatch'];
export type ProjectPage = components['schemas']['ProjectPage'];
export type Member = components['schemas']['Member'];
export type MemberCreate = components['schemas']['MemberCreate'];
export type MemberPatch = components['schemas']['MemberPatch'];
export type MemberPage = components['schemas']['MemberPage'];
export type Event = components['schemas']['Event'];
export type EventPage = components['schemas']['EventPage'];
export type Webhook = components['schemas']['Webhook'];
export type WebhookCreate = components['schemas']['WebhookCreate'];
export type WebhookCreated = components['schemas']['WebhookCreated'];
export type WebhookPatch = components['schemas']['WebhookPatch'];
export type WebhookList = components['schemas']['WebhookList'];
export type WebhookSecret = components['schemas']['WebhookSecret'];
export type Delivery = components['schemas']['Delivery'];
export type DeliveryPage = components['schemas']['DeliveryPage'];
export type EmailVerification = components['schemas']['EmailVerification'];
export type PasswordForgotten = components['schemas']['PasswordForgotten'];
export type PasswordReset = components['schemas']['PasswordReset'];
export type TotpEnrolmentRequest = components['schemas']['TotpEnrolmentRequest'];
export type TotpEnrolment = components['schemas']['TotpEnrolment'];
export type TotpActivation = components['schemas']['TotpActivation'];
export type RecoveryCodes = components['schemas']['RecoveryCodes'];
export type MfaConfirmation = components['schemas']['MfaConfirmation'];
export type MfaLogin = components['schemas']['MfaLogin'];
export type HeaderXRequestId = components['headers']['X-Request-Id'];
export type HeaderRateLimitLimit = components['headers']['RateLimit-Limit'];
export type HeaderRateLimitRemaining = components['headers']['RateLimit-Remaining'];
export type HeaderRateLimitReset = components['headers']['RateLimit-Reset'];
export type HeaderRetryAfter = components['headers']['Retry-After'];
export type HeaderWwwAuthenticate = components['headers']['WWW-Authenticate'];
export type HeaderLocation = components['headers']['Location'];
export type HeaderETag = components['headers']['ETag'];
export type HeaderLink = components['headers']['Link'];
export type HeaderCacheControl = components['headers']['Cache-Control'];
export type HeaderIdempotentReplayed = components['headers']['Idempotent-Replayed'];
export type $defs = Record<string, never>;
export interface operations {
    getLiveness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The process is running. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Ready to serve requests. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getJwks: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The public keys, the signing key first. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "cache-control": components["headers"]["Cache-Control"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JsonWebKeySet"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    signUp: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SignupRequest"];
            };
        };
        responses: {
            /** @description The account was created; `Location` is its URL. */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    logIn: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoginRequest"];
            };
        };
        responses: {
            /** @description You are logged in: a new access token and refresh token. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    logInWithSecondFactor: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MfaLogin"];
            };
        };
        responses: {
            /** @description You are logged in: a new access token and refresh token. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    verifyEmail: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EmailVerification"];
            };
        };
        responses: {
            /** @description The address is verified. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    forgotPassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PasswordForgotten"];
            };
        };
        responses: {
            /** @description Accepted: if an account has this verified address, a reset link is on its way. */
            202: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    resetPassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PasswordReset"];
            };
        };
        responses: {
            /** @description The password is set: log in with it. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    startSingleSignOn: {
        parameters: {
            query?: {
                /** @description Where the sign-in ends, with `code` or `error`: exactly one of `OIDC_ALLOWED_REDIRECTS`. Required. */
                redirect_uri?: string;
                /** @description Your own value, handed back unchanged with the result (RFC 6749 §4.1.1): check it there, so that nobody can make you finish a sign-in you did not start. */
                state?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description To the OpenID provider. */
            302: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    finishSingleSignOn: {
        parameters: {
            query?: {
                /** @description Ours, as given to the provider. */
                state?: string;
                /** @description The provider's authorization code. */
                code?: string;
                /** @description The provider's error, when the sign-in failed there. */
                error?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description To the sign-in's `redirect_uri`, with `code` and `state`, or `error`, `error_description` and `state`. */
            302: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    refreshTokens: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RefreshTokenRequest"];
            };
        };
        responses: {
            /** @description A new access token, and the refresh token that replaces the one sent. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    logOut: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RefreshTokenRequest"];
            };
        };
        responses: {
            /** @description The family is revoked. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    issueToken: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/x-www-form-urlencoded": components["schemas"]["TokenRequest"];
            };
        };
        responses: {
            /** @description An access token and a refresh token (RFC 6749 §5.1). */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getCurrentUser: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Your account. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    deleteCurrentUser: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The account is deleted. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateCurrentUser: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UserSelfPatch"];
            };
        };
        responses: {
            /** @description Your account, as changed. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    changePassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PasswordChange"];
            };
        };
        responses: {
            /** @description The password is changed. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listIdentities: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Your linked identities. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["IdentityList"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    unlinkIdentity: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The identity is unlinked. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listUsers: {
        parameters: {
            query: {
                /** @description Page size. */
                limit: number;
                /** @description The opaque `next_cursor` of the previous page, e.g. `eyJjIjoiMjAyNi0xMS0yM1QwOTozMDowMC4wMDBaIn0.k3Jx`. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of users. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    link: components["headers"]["Link"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserPage"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The user. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    deleteUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The user is deleted. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UserAdminPatch"];
            };
        };
        responses: {
            /** @description The user, as changed. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    requestEmailVerification: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Accepted: the link is on its way. */
            202: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    startTotpEnrolment: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TotpEnrolmentRequest"];
            };
        };
        responses: {
            /** @description The secret to enrol. */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TotpEnrolment"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    disableTotp: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MfaConfirmation"];
            };
        };
        responses: {
            /** @description Two-factor is off. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    activateTotp: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TotpActivation"];
            };
        };
        responses: {
            /** @description Two-factor is on: your recovery codes. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RecoveryCodes"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    regenerateRecoveryCodes: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MfaConfirmation"];
            };
        };
        responses: {
            /** @description Your new recovery codes. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RecoveryCodes"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    disableUserMfa: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Two-factor is off for this user. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listApiKeys: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Your active keys. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKeyList"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createApiKey: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ApiKeyCreate"];
            };
        };
        responses: {
            /** @description The key was created; `key` is its secret, shown this once. */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKeyCreated"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    revokeApiKey: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The key is revoked. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listTasks: {
        parameters: {
            query?: {
                /** @description Only the tasks of this project, e.g. `0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e`. A project you are not a member of (or none at all) lists nothing. */
                project_id?: string;
                /** @description Only the tasks assigned to this user id, to you (`me`), or to nobody (`none`). */
                assignee_id?: string;
                /** @description Only completed (`true`) or only open (`false`) tasks. */
                completed?: boolean;
                /** @description Only tasks of this priority, e.g. `high`. */
                priority?: components["schemas"]["Priority"];
                /** @description Only tasks carrying this tag. Repeat the parameter for several tags: a task must carry all of them (`?tag=work&tag=urgent`). */
                tag?: string[];
                /** @description Only tasks due strictly before this instant, e.g. `2026-12-31T23:59:59Z` (tasks without `due_at` never match). */
                due_before?: string;
                /** @description Only tasks due strictly after this instant, e.g. `2026-12-01T00:00:00Z` (tasks without `due_at` never match). */
                due_after?: string;
                /** @description Full-text search over title and description with PostgreSQL English text search (`run` finds "Running"). Web-search syntax: `"exact phrase"`, `or`, `-excluded`, e.g. `passport -visa`. */
                q?: string;
                /** @description Sort field; a leading `-` sorts descending. Ties are broken by `id` in the same direction. Tasks without `due_at` come last in both directions. `title` sorts by Unicode code point (case-sensitive, `Z` before `a`); `priority` as low < medium < high. */
                sort?: "created_at" | "-created_at" | "due_at" | "-due_at" | "priority" | "-priority" | "title" | "-title";
                /** @description Page size, 1 to 100. */
                limit?: number;
                /** @description Opaque `next_cursor` of the previous page. It is tied to you and to this `sort` and these filters: sent with others, or altered, it is a 400 `INVALID_CURSOR`. Paging stays exact while tasks are added or removed meanwhile: each task still present is returned once. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of tasks. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    link: components["headers"]["Link"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskPage"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createTask: {
        parameters: {
            query?: never;
            header?: {
                /** @description A unique key (a UUID is a good choice) that makes retrying this POST safe. Within 24 hours, the same key with the same JSON body (key order and white space do not matter) replays the first response — status, `Location`, `ETag` and body, with `Idempotent-Replayed: true` — and creates nothing. The same key with another body is 422. A duplicate sent while the first is still running is answered at once with 409 `IDEMPOTENCY_IN_FLIGHT` and `Retry-After`; retry then to get the replay. A request refused as invalid, or one that failed, is not remembered, so a corrected retry may reuse its key. Keys are per user. */
                "idempotency-key"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TaskCreate"];
            };
        };
        responses: {
            /** @description The task was created (or, with `Idempotent-Replayed: true`, the first response to this key is replayed). */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    etag: components["headers"]["ETag"];
                    "idempotent-replayed": components["headers"]["Idempotent-Replayed"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getTask: {
        parameters: {
            query?: never;
            header?: {
                /** @description The `ETag` you hold (or several, or `*`): when the task still matches, the answer is 304 with no body. Weak comparison (`W/"3"` matches `"3"`). */
                "if-none-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The task. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description Not modified: the task still matches `If-None-Match`. */
            304: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    replaceTask: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TaskReplace"];
            };
        };
        responses: {
            /** @description The task. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    deleteTask: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The task was deleted. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateTask: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/merge-patch+json": components["schemas"]["TaskPatch"];
                "application/json": components["schemas"]["TaskPatch"];
            };
        };
        responses: {
            /** @description The task. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listProjects: {
        parameters: {
            query?: {
                /** @description Sort field; a leading `-` sorts descending. Ties are broken by `id` in the same direction. `name` sorts by Unicode code point (case-sensitive, `Z` before `a`). */
                sort?: "name" | "-name" | "created_at" | "-created_at";
                /** @description Page size, 1 to 100. */
                limit?: number;
                /** @description Opaque `next_cursor` of the previous page. It only works for you and with the same `sort`: otherwise, or altered, it is a 400 `INVALID_CURSOR`. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of projects. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    link: components["headers"]["Link"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ProjectPage"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createProject: {
        parameters: {
            query?: never;
            header?: {
                /** @description A unique key (a UUID is a good choice) that makes retrying this POST safe. Within 24 hours, the same key with the same JSON body (key order and white space do not matter) replays the first response — status, `Location`, `ETag` and body, with `Idempotent-Replayed: true` — and creates nothing. The same key with another body is 422. A duplicate sent while the first is still running is answered at once with 409 `IDEMPOTENCY_IN_FLIGHT` and `Retry-After`; retry then to get the replay. A request refused as invalid, or one that failed, is not remembered, so a corrected retry may reuse its key. Keys are per user. */
                "idempotency-key"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ProjectCreate"];
            };
        };
        responses: {
            /** @description The project was created (or, with `Idempotent-Replayed: true`, the first response to this key is replayed). */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    etag: components["headers"]["ETag"];
                    "idempotent-replayed": components["headers"]["Idempotent-Replayed"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Project"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getProject: {
        parameters: {
            query?: never;
            header?: {
                /** @description The `ETag` you hold (or several, or `*`): when the task still matches, the answer is 304 with no body. Weak comparison (`W/"3"` matches `"3"`). */
                "if-none-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The project, as you see it. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Project"];
                };
            };
            /** @description Not modified: the project still matches `If-None-Match`. */
            304: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    deleteProject: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The project and its tasks were deleted. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateProject: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/merge-patch+json": components["schemas"]["ProjectPatch"];
                "application/json": components["schemas"]["ProjectPatch"];
            };
        };
        responses: {
            /** @description The project, as you see it. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Project"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listProjectMembers: {
        parameters: {
            query?: {
                /** @description Page size, 1 to 100. */
                limit?: number;
                /** @description Opaque `next_cursor` of the previous page; only for you and this project (else 400 `INVALID_CURSOR`). */
                cursor?: string;
            };
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of members. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    link: components["headers"]["Link"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MemberPage"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    addProjectMember: {
        parameters: {
            query?: never;
            header?: {
                /** @description A unique key (a UUID is a good choice) that makes retrying this POST safe. Within 24 hours, the same key with the same JSON body (key order and white space do not matter) replays the first response — status, `Location`, `ETag` and body, with `Idempotent-Replayed: true` — and creates nothing. The same key with another body is 422. A duplicate sent while the first is still running is answered at once with 409 `IDEMPOTENCY_IN_FLIGHT` and `Retry-After`; retry then to get the replay. A request refused as invalid, or one that failed, is not remembered, so a corrected retry may reuse its key. Keys are per user. */
                "idempotency-key"?: string;
            };
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MemberCreate"];
            };
        };
        responses: {
            /** @description The member was added (or, with `Idempotent-Replayed: true`, the first response to this key is replayed). */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    etag: components["headers"]["ETag"];
                    "idempotent-replayed": components["headers"]["Idempotent-Replayed"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Member"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getProjectMember: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The project id (a UUID). A malformed id is a 400. */
                id: string;
                /** @description The member's user id (a UUID). A malformed id is a 400. */
                user_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The member. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Member"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    removeProjectMember: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The project id (a UUID). A malformed id is a 400. */
                id: string;
                /** @description The member's user id (a UUID). A malformed id is a 400. */
                user_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The member was removed. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateProjectMember: {
        parameters: {
            query?: never;
            header?: {
                /** @description Only write when the task's current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally. */
                "if-match"?: string;
            };
            path: {
                /** @description The project id (a UUID). A malformed id is a 400. */
                id: string;
                /** @description The member's user id (a UUID). A malformed id is a 400. */
                user_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/merge-patch+json": components["schemas"]["MemberPatch"];
                "application/json": components["schemas"]["MemberPatch"];
            };
        };
        responses: {
            /** @description The member. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    etag: components["headers"]["ETag"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Member"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `If-Match` precondition failed: the resource changed since you read it. */
            412: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listEvents: {
        parameters: {
            query?: {
                /** @description Resume after this place: the `next_after` of your previous poll (or an event's `id`). Omitted: from the oldest event kept. Past the retention (`EVENTS_RETENTION_DAYS`) it is a 410 `SYNC_EXPIRED`. */
                after?: string;
                /** @description Page size, 1 to 500. */
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of events, and where to resume. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EventPage"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Gone: the change feed no longer reaches back to `after` (`SYNC_EXPIRED`); list the resources again and poll from the `next_after` of a fresh poll. */
            410: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    streamEvents: {
        parameters: {
            query?: {
                /** @description Start after this place (an event's `id`, or the `next_after` of a poll); `Last-Event-ID` takes precedence. Omitted with no `Last-Event-ID`: from now. Past the retention it is a 410 `SYNC_EXPIRED`. */
                after?: string;
            };
            header?: {
                /** @description The `id` of the last event received: an `EventSource` sends it by itself when it reconnects, and the stream resumes right after it. */
                "last-event-id"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The events, as they happen, until the server or the client ends the stream. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The `Accept` header refuses every media type this operation answers with. */
            406: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Gone: the change feed no longer reaches back to `after` (`SYNC_EXPIRED`); list the resources again and poll from the `next_after` of a fresh poll. */
            410: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listWebhooks: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Your webhooks. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookList"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WebhookCreate"];
            };
        };
        responses: {
            /** @description The webhook, with its secret (shown this once). */
            201: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    location: components["headers"]["Location"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookCreated"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The webhook. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Webhook"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    deleteWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Deleted. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/merge-patch+json": components["schemas"]["WebhookPatch"];
                "application/json": components["schemas"]["WebhookPatch"];
            };
        };
        responses: {
            /** @description The webhook, changed. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Webhook"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`). */
            422: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    pingWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Queued: the attempt is made at once, and shows in the deliveries. */
            202: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    rotateWebhookSecret: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The new secret (shown this once). */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookSecret"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listWebhookDeliveries: {
        parameters: {
            query?: {
                /** @description Page size, 1 to 100. */
                limit?: number;
                /** @description Opaque `next_cursor` of the previous page; only for you and this webhook (else 400 `INVALID_CURSOR`). */
                cursor?: string;
            };
            header?: never;
            path: {
                /** @description The resource id (a UUID). A malformed id is a 400. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of attempts. */
            200: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    link: components["headers"]["Link"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeliveryPage"];
                };
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    retryWebhookDelivery: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The webhook's id. */
                id: string;
                /** @description The delivery attempt's id. */
                delivery_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Queued: the attempt is made at once, and shows in the deliveries. */
            202: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`). */
            400: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, expired or revoked credentials. */
            401: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`). */
            403: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "www-authenticate": components["headers"]["WWW-Authenticate"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource, or one you may not see (someone else's, or in a project you are not a member of). */
            404: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state of the resource. */
            409: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is larger than the server accepts. */
            413: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A path parameter is longer than the server accepts (200 characters). */
            414: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The request body is not `application/json`. */
            415: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait for `Retry-After` seconds. */
            429: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unexpected error; the request id identifies it in the server log. */
            500: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable or the server is shutting down; retry after `Retry-After` seconds. */
            503: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    "retry-after": components["headers"]["Retry-After"];
                    "ratelimit-limit": components["headers"]["RateLimit-Limit"];
                    "ratelimit-remaining": components["headers"]["RateLimit-Remaining"];
                    "ratelimit-reset": components["headers"]["RateLimit-Reset"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method. */
            default: {
                headers: {
                    "x-request-id": components["headers"]["X-Request-Id"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
}

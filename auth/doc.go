// Package auth is the verifying side of member-system security: the
// registry of member systems (configs/members.yaml), request
// authentication by HMAC-SM3 signature, authorisation by role and grant,
// and per-app rate limits shared across hub instances. The signing side,
// and the exact canonical string, are in package client.
//
// The HTTP edge uses it in this order, per request:
//
//	m, err := authn.Authenticate(ctx, req)   // 401 AUTH_* codes
//	_, err = limiter.Allow(ctx, m)           // 429 RATE_LIMITED (+ Retry-After)
//	err = m.Authorize(auth.OpLicenseRead, auth.Resource{LicenseType: t, Authority: a, Matter: mc}) // 403 FORBIDDEN_*
//
// # Member registry
//
// members.yaml lists every member system:
//
//	members:
//	  - app_id: scjg-approval            # [a-z0-9-]{3,64}, unique
//	    name: 市场监管审批系统
//	    department: 市场监督管理局
//	    roles: [approval_system]
//	    secret: env:LH_SECRET_SCJG          # or demo:LABEL (demo mode only), or a literal (0600 file only)
//	    next_secret: env:LH_SECRET_SCJG_NEXT  # optional, during a rotation
//	    grants:
//	      - operations: [license.read, license.lookup]
//	        license_types: ["11100000000013338W011"]  # empty or omitted: any
//	        authorities: []                            # issuing authorities (USCC); empty: any
//	        matters: ["330100-000-XK-00123"]           # service matter codes; empty: any
//	    rate_limit: {requests: 50, per: 1s}           # omitted: 20 per 1s
//
// Roles bound what grants may allow (see Role.Operations); LoadRegistry
// lists every rule it enforces.
//
// # Rotating a secret without downtime
//
//  1. Put the new secret in next_secret and reload: both secrets verify.
//  2. Switch the member system to the new secret.
//  3. Move it to secret, empty next_secret and reload: only the new one
//     verifies.
//
// The package depends on no transport or storage library: the nonce store
// and the rate counters are the NonceStore and Counter interfaces, which
// licensehub.KV (Redis, or in-process when embedded) satisfies.
package auth

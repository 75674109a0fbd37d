// Package client is the signing side of the hub's member-system
// authentication: what an approval system, a department's system or hubctl
// imports to call the hub. It depends on the standard library and SM3 only.
//
// # Headers
//
// Every request to a protected endpoint carries four headers:
//
//	X-Hub-App-Id     the member system's app ID, e.g. scjg-approval
//	X-Hub-Timestamp  the signing time, Unix seconds in decimal, e.g. 1764144000
//	X-Hub-Nonce      16 to 64 characters of [A-Za-z0-9_-], fresh and random per request
//	X-Hub-Signature  standard base64 (with padding) of HMAC-SM3(secret, canonical string)
//
// The hub accepts a timestamp within its clock skew (default ±5 minutes) of
// its own clock and each nonce once per app within twice that skew.
//
// # The canonical string
//
// The signed bytes are six lines joined by "\n" (no trailing newline):
//
//	METHOD                 the HTTP method, upper-case: GET, POST, ...
//	escaped path           the path exactly as sent in the request line, without
//	                       the query: "/v1/licenses/a%2Fb" stays as it is, not
//	                       decoded, not cleaned
//	canonical query        see below; empty when there is no query
//	timestamp              the X-Hub-Timestamp value
//	nonce                  the X-Hub-Nonce value
//	body digest            lower-case hex SM3 of the body; of the empty string
//	                       when there is none (1ab21d8355cfa17f...5082aa2b)
//
// The canonical query is built from the raw query string (after '?'):
//
//  1. split it at '&', dropping empty parts;
//  2. split each part at its first '=' into key and value (a part without
//     '=' has the value "");
//  3. percent-decode key and value as application/x-www-form-urlencoded
//     ('+' is a space, %XX a byte);
//  4. sort the pairs by key, then by value, comparing the decoded bytes;
//  5. re-encode key and value per RFC 3986: the unreserved characters
//     A-Z a-z 0-9 - . _ ~ as they are, every other byte as %XX with
//     upper-case hex (a space is %20, '+' is %2B);
//  6. join the pairs as key=value with '&'.
//
// So "b=2&a=1", "a=1&b=2" and "a=1&&b=%32" all give "a=1&b=2", and
// "q=a+b" and "q=a%20b" both give "q=a%20b". A query that is not valid
// percent-encoding (a '%' not followed by two hex digits) has no canonical
// form: [CanonicalQuery] reports it, and the hub refuses such a request.
//
// # Worked example
//
// Secret "demo-secret-0123456789abcdef-0123456789" (39 bytes), app ID
// scjg-approval, and
//
//	POST /v1/licenses/lookup?type=11100000000013338W011&matter=330100-000-XK-00123&reason=%E5%8A%9E%E4%BB%B6+check&page=2
//	X-Hub-Timestamp: 1764144000
//	X-Hub-Nonce: 3q2-7wEXAMPLE_nonce_0001
//	body: {"holder_code":"91330100MA27XL0X1R"}
//
// have the canonical string
//
//	POST
//	/v1/licenses/lookup
//	matter=330100-000-XK-00123&page=2&reason=%E5%8A%9E%E4%BB%B6%20check&type=11100000000013338W011
//	1764144000
//	3q2-7wEXAMPLE_nonce_0001
//	7d1b20953ff803ee623f2e8ba2573ad551713e8c1dd2fcb54f16fb5976b0bbee
//
// and the signature
//
//	X-Hub-Signature: /4Sc4weW5G26jefabGJBOQSu7KKwXGvcHWpkOyNuch0=
//
// TestWorkedExample recomputes these values, and TestWorkedExampleOpenSSL
// checks them with OpenSSL 3, which any implementation can use the same way:
//
//	printf '%s' "$body" | openssl dgst -sm3 -r                  # the body digest
//	printf '%s' "$canonical" | openssl mac -digest SM3 \
//	    -macopt key:"$secret" -binary HMAC | base64              # the signature
//
// # Use
//
// [Client] signs and sends one call; [NewTransport] signs every request of
// an *http.Client; [SignRequest] signs a request you send yourself. Errors
// from the hub are JSON {"code","message","request_id","details"}:
// [ReadError] turns such a response into an *[APIError].
package client

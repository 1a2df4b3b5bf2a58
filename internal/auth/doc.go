// Package auth authenticates Kafka clients: principals from client
// certificates (Kafka's ssl.principal.mapping.rules), and the SASL
// exchanges PLAIN and SCRAM-SHA-256/512 (xdg-go/scram's server) against
// stored SCRAM credentials, OAUTHBEARER (a JWT checked by golang-jwt against
// a JWKS file, or one fetched again and again through a func the broker
// gives, jwks.go), plus the derivation of those credentials from a
// password (--add-scram) or a salted password (AlterUserScramCredentials).
// It also parses Kafka's JAAS login (sasl.jaas.config, ParseJAAS): the
// broker's own credentials as a client of its peers.
//
// It is pure: no sockets (package kafka/server runs the TLS handshake and
// frames SASL tokens), no protocol codes (the handlers map ErrAuthFailed to
// SASL_AUTHENTICATION_FAILED), no store (Credentials is the lookup the
// caller gives, over the metadata snapshot).
//
// Invariants:
//   - No password is stored or logged: credentials hold the salt, the
//     iteration count and StoredKey/ServerKey (RFC 5802). PLAIN salts the
//     given password with the stored salt and compares StoredKeys in
//     constant time, so PLAIN users are the SCRAM users.
//   - Every failure a client causes is ErrAuthFailed, whatever was wrong:
//     the answer never tells an unknown user from a wrong password.
//   - An Exchange is used by one connection's reader goroutine at a time;
//     Credentials must be safe for concurrent use.
//   - ParseJAAS's errors name the option, never its value (a password).
//   - Parsers of client input (ParsePlain, the SCRAM messages behind
//     Exchange.Step, ParseScramArg) return errors, never panic
//     (FuzzParsePlain, FuzzScramServer).
package auth

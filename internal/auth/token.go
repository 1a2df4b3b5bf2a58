package auth

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
)

// TokenHMAC is a delegation token's HMAC, as Kafka computes it: HMAC-SHA512
// of the token id (UTF-8) keyed by delegation.token.secret.key. Every
// broker derives it from the id and the shared key; it is never stored.
func TokenHMAC(secret, id string) []byte {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(id))
	return m.Sum(nil)
}

// TokenPassword is the SCRAM password a client proves for a token: its
// HMAC in standard base64, as Kafka's clients send it (the Java client's
// ScramLoginModule password, librdkafka's sasl.password, franz-go's
// scram.Auth{IsToken: true}.Pass).
func TokenPassword(hmac []byte) string { return base64.StdEncoding.EncodeToString(hmac) }

package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadScramArg marks an --add-scram value that does not parse.
var ErrBadScramArg = errors.New("bad --add-scram value")

// DefaultScramIterations is the iteration count of --add-scram entries
// that give none (Kafka's tool uses 4096 too).
const DefaultScramIterations = 4096

// ParseScramArg parses one --add-scram value of Kafka's kafka-storage.sh:
//
//	SCRAM-SHA-256=[name=alice,password=alice-secret]
//	SCRAM-SHA-512=[name=alice,iterations=8192,salt="base64",saltedpassword="base64"]
//
// With a password, a random 24-byte salt is drawn and the password salted
// here; the result holds only the salt and the derived keys.
func ParseScramArg(s string) (user, mechanism string, cred ScramCredential, err error) {
	mechanism, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") {
		return "", "", cred, fmt.Errorf("%w: %q: want MECHANISM=[name=...,password=...]", ErrBadScramArg, s)
	}
	if mechanism != ScramSHA256 && mechanism != ScramSHA512 {
		return "", "", cred, fmt.Errorf("%w: %q: mechanism %q is not SCRAM-SHA-256 or SCRAM-SHA-512", ErrBadScramArg, s, mechanism)
	}
	kv := map[string]string{}
	for _, part := range strings.Split(rest[1:len(rest)-1], ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return "", "", cred, fmt.Errorf("%w: %q: %q is not key=value", ErrBadScramArg, s, part)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if _, dup := kv[k]; dup {
			return "", "", cred, fmt.Errorf("%w: %q: %s given twice", ErrBadScramArg, s, k)
		}
		kv[k] = v
	}
	user = kv["name"]
	if user == "" {
		return "", "", cred, fmt.Errorf("%w: %q: no name", ErrBadScramArg, s)
	}
	iters := DefaultScramIterations
	if v, ok := kv["iterations"]; ok {
		if iters, err = strconv.Atoi(v); err != nil || iters < MinScramIterations || iters > MaxScramIterations {
			return "", "", cred, fmt.Errorf("%w: %q: iterations %q: want %d to %d", ErrBadScramArg, s, v, MinScramIterations, MaxScramIterations)
		}
	}
	password, hasPassword := kv["password"]
	salt64, hasSalt := kv["salt"]
	salted64, hasSalted := kv["saltedpassword"]
	switch {
	case hasPassword && !hasSalt && !hasSalted && password != "":
		salt := make([]byte, 24)
		if _, err := rand.Read(salt); err != nil {
			return "", "", cred, err
		}
		cred, err = Derive(mechanism, []byte(password), salt, iters)
	case !hasPassword && hasSalt && hasSalted:
		salt, err1 := base64.StdEncoding.DecodeString(salt64)
		salted, err2 := base64.StdEncoding.DecodeString(salted64)
		if err1 != nil || err2 != nil || len(salt) == 0 || len(salted) == 0 {
			return "", "", cred, fmt.Errorf("%w: %q: salt and saltedpassword are base64", ErrBadScramArg, s)
		}
		cred, err = FromSaltedPassword(mechanism, salted, salt, iters)
	default:
		return "", "", cred, fmt.Errorf("%w: %q: give password, or salt and saltedpassword", ErrBadScramArg, s)
	}
	return user, mechanism, cred, err
}

package auth

import (
	"errors"
	"slices"
	"testing"
)

// The client exchanges log in to the server exchanges against credentials
// derived from a JAAS login's user_ entries, and fail with a wrong
// password on both sides' terms.
func TestClientExchangeAgainstJAASUsers(t *testing.T) {
	l, err := ParseJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required username="ctrl" password="pw" user_ctrl="pw" user_other="x";`)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Users(); !slices.Equal(got, []string{"ctrl", "other"}) {
		t.Fatalf("users %v", got)
	}
	creds, err := CredentialsFromJAAS(l)
	if err != nil {
		t.Fatal(err)
	}
	run := func(mech, user, pw string) error {
		cl, err := NewClientExchange(mech, user, pw)
		if err != nil {
			return err
		}
		srv, err := NewExchange(mech, creds, nil)
		if err != nil {
			return err
		}
		var challenge []byte
		for i := 0; i < 5; i++ {
			resp, clientDone, err := cl.Step(challenge)
			if err != nil {
				return err
			}
			if resp == nil {
				if !clientDone {
					return errors.New("client sends nothing and is not done")
				}
				return nil
			}
			ans, done, err := srv.Step(resp)
			if err != nil {
				return err
			}
			if done && srv.Principal() != "User:"+user {
				return errors.New("principal " + srv.Principal())
			}
			if done && len(ans) == 0 {
				if !clientDone {
					return errors.New("server done, client not")
				}
				return nil
			}
			challenge = ans
		}
		return errors.New("exchange does not end")
	}
	for _, mech := range []string{PLAIN, ScramSHA256, ScramSHA512} {
		if err := run(mech, "ctrl", "pw"); err != nil {
			t.Errorf("%s right password: %v", mech, err)
		}
		if err := run(mech, "ctrl", "wrong"); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s wrong password: %v, want ErrAuthFailed", mech, err)
		}
		if err := run(mech, "nobody", "pw"); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s unknown user: %v, want ErrAuthFailed", mech, err)
		}
	}
	if _, err := NewClientExchange("GSSAPI", "u", "p"); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Errorf("GSSAPI: %v", err)
	}
}

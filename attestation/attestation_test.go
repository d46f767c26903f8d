package attestation

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/mr-tron/base58"
)

func TestMrEnclaveText(t *testing.T) {
	m := MrEnclave(sha256.Sum256([]byte("enclave")))
	s := m.String()
	if s != base58.Encode(m[:]) {
		t.Fatalf("String = %s", s)
	}
	got, err := ParseMrEnclave(s)
	if err != nil || got != m {
		t.Fatalf("parse base58: %v %v", got, err)
	}
	got, err = ParseMrEnclave(m.Hex())
	if err != nil || got != m {
		t.Fatalf("parse hex: %v %v", got, err)
	}
	got, err = ParseMrEnclave("0X" + strings.ToUpper(m.Hex()[2:]))
	if err != nil || got != m {
		t.Fatalf("parse upper hex: %v %v", got, err)
	}
	var zero MrEnclave
	if !zero.IsZero() || m.IsZero() {
		t.Fatal("IsZero")
	}
	if zero.String() != strings.Repeat("1", 32) {
		t.Fatalf("zero = %s", zero.String())
	}
	if z, err := ParseMrEnclave(zero.String()); err != nil || z != zero {
		t.Fatalf("zero round trip: %v", err)
	}
}

func TestMrEnclaveJSON(t *testing.T) {
	m := MrEnclave(sha256.Sum256([]byte("x")))
	b, err := json.Marshal(struct {
		M MrEnclave `json:"m"`
	}{m})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"m":"`+m.String()+`"}` {
		t.Fatalf("json = %s", b)
	}
	var back struct {
		M MrEnclave `json:"m"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.M != m {
		t.Fatalf("unmarshal: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"m":"nope0"}`), &back); !errors.Is(err, ErrBadMrEnclave) {
		t.Fatalf("bad json: %v", err)
	}
}

func TestMrEnclaveCBORIsByteString(t *testing.T) {
	m := MrEnclave{1, 2, 3}
	b, err := cbor.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x58 || b[1] != 32 || len(b) != 34 {
		t.Fatalf("cbor = %x", b)
	}
}

func TestParseMrEnclaveErrors(t *testing.T) {
	short := base58.Encode(make([]byte, 31))
	for _, s := range []string{"", "   ", "0x", "0x12", "0xzz", "0OIl", short, "0x" + strings.Repeat("ab", 33)} {
		if _, err := ParseMrEnclave(s); !errors.Is(err, ErrBadMrEnclave) {
			t.Errorf("ParseMrEnclave(%q) = %v, want ErrBadMrEnclave", s, err)
		}
	}
}

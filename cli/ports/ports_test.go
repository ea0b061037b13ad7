package ports

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOverrides(t *testing.T) {
	known := []string{"host-apiserver", "etcd-peer", "etcd-client"}
	tests := []struct {
		name    string
		items   []string
		want    Set
		wantErr []string // substrings the error must contain; nil means success
	}{
		{name: "nil items", items: nil, want: Set{}},
		{
			name:  "good",
			items: []string{"etcd-client=2379", "host-apiserver=36443", "etcd-peer=1"},
			want:  Set{"etcd-client": 2379, "host-apiserver": 36443, "etcd-peer": 1},
		},
		{name: "max port", items: []string{"etcd-client=65535"}, want: Set{"etcd-client": 65535}},
		{name: "missing equals", items: []string{"etcd-client:2379"}, wantErr: []string{`"etcd-client:2379"`, "missing '='"}},
		{name: "empty name", items: []string{"=2379"}, wantErr: []string{`"=2379"`, "empty name"}},
		{name: "non-numeric", items: []string{"etcd-client=abc"}, wantErr: []string{`"etcd-client=abc"`, "not a number"}},
		{name: "empty port", items: []string{"etcd-client="}, wantErr: []string{`"etcd-client="`, "not a number"}},
		{name: "zero port", items: []string{"etcd-client=0"}, wantErr: []string{`"etcd-client=0"`, "out of range"}},
		{name: "negative port", items: []string{"etcd-client=-5"}, wantErr: []string{`"etcd-client=-5"`, "out of range"}},
		{name: "too large", items: []string{"etcd-client=65536"}, wantErr: []string{`"etcd-client=65536"`, "out of range"}},
		{name: "overflow", items: []string{"etcd-client=99999999999999999999"}, wantErr: []string{"out of range"}},
		{
			name:    "unknown name",
			items:   []string{"etcd-client=2379", "bogus=1234"},
			wantErr: []string{`"bogus=1234"`, `unknown name "bogus"`, "known: etcd-client, etcd-peer, host-apiserver"},
		},
		{
			name:    "duplicate name",
			items:   []string{"etcd-client=2379", "etcd-client=2380"},
			wantErr: []string{`"etcd-client=2380"`, "already set to 2379"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOverrides(tt.items, known)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseOverrides(%q) = %v, want error", tt.items, got)
				}
				for _, sub := range tt.wantErr {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q does not contain %q", err, sub)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOverrides(%q): %v", tt.items, err)
			}
			if got == nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOverrides(%q) = %#v, want %#v", tt.items, got, tt.want)
			}
		})
	}
}

func TestParseOverridesDoesNotReorderKnown(t *testing.T) {
	known := []string{"b", "a"}
	if _, err := ParseOverrides([]string{"c=1"}, known); err == nil {
		t.Fatal("want error for unknown name")
	}
	if !reflect.DeepEqual(known, []string{"b", "a"}) {
		t.Errorf("known was modified: %q", known)
	}
}

package appmgr

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/manifest"
)

// fakeBase points the base's user and group files at ones naming the
// given passwd and group lines.
func fakeBase(t *testing.T, passwd, group string) {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "passwd"), passwd)
	testutil.WriteFile(t, filepath.Join(dir, "group"), group)
	testutil.Replace(t, &passwdFile, filepath.Join(dir, "passwd"))
	testutil.Replace(t, &groupFile, filepath.Join(dir, "group"))
}

func (f *fixture) appID(name string) (int, error) {
	f.st.Lock()
	defer f.st.Unlock()
	return f.m.appIDLocked(name)
}

func TestAppIDs(t *testing.T) {
	f := newFixture(t)
	// The base has a user at 70000, one whose group is 70001, and a group 70002.
	fakeBase(t, "root:x:0:0::/root:/bin/sh\nsvc:x:70000:100::/:/bin/false\nbad line\nother:x:100:70001::/:/bin/false\n",
		"root:x:0:\nlab:x:70002:svc\n")
	tests := []struct {
		name string
		want int
	}{
		{"hello", 70003}, // 70000-70002 are the base's
		{"other", 70004},
		{"hello", 70003}, // kept
	}
	for _, tt := range tests {
		got, err := f.appID(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("%s: got id %d, %v, want %d", tt.name, got, err, tt.want)
		}
	}
	// A removed app keeps its id: no other app gets it, and it gets it back.
	f.st.Lock()
	f.m.setApp("hello", nil)
	f.st.Unlock()
	if got, _ := f.appID("third"); got != 70005 {
		t.Errorf("third app after hello's remove: got id %d, want 70005 (hello's 70003 is not given away)", got)
	}
	if got, _ := f.appID("hello"); got != 70003 {
		t.Errorf("hello reinstalled: got id %d, want its old 70003", got)
	}
}

func TestAppIDsRunOut(t *testing.T) {
	f := newFixture(t)
	fakeBase(t, "", "")
	ids := map[string]int{}
	for id := FirstAppID; id <= LastAppID; id++ {
		ids["app"+strconv.Itoa(id)] = id
	}
	f.st.Lock()
	f.st.Set(appIDsKey, ids)
	f.st.Unlock()
	if _, err := f.appID("hello"); err == nil || !strings.Contains(err.Error(), "cannot give hello a user: every id from 70000 to 79999 is taken") {
		t.Errorf("got %v, want an error saying every id is taken", err)
	}
}

// TestRecordUser checks that an app runs as root only when its manifest
// asks for it and its publisher's delegation grants it.
func TestRecordUser(t *testing.T) {
	f := newFixture(t)
	fakeBase(t, "", "")
	rootApp := &manifest.Manifest{Name: "hello", Version: "1", Type: "app", User: manifest.UserRoot}
	plainApp := &manifest.Manifest{Name: "hello", Version: "1", Type: "app"}
	granted := revisionOf(1, f.pub)
	granted.Grants = []string{assert.GrantRoot}
	classicApp := &manifest.Manifest{Name: "hello", Version: "1", Type: "app", Confinement: manifest.Classic}
	classicGranted := revisionOf(1, f.pub)
	classicGranted.Grants = []string{assert.GrantClassic}
	tests := []struct {
		name    string
		mf      *manifest.Manifest
		rev     Revision
		want    launch.User
		wantErr string
	}{
		{"own user", plainApp, revisionOf(1, f.pub), launch.User{UID: FirstAppID, GID: FirstAppID}, ""},
		{"own user despite the grant", plainApp, granted, launch.User{UID: FirstAppID, GID: FirstAppID}, ""},
		{"root granted", rootApp, granted, launch.User{Root: true}, ""},
		{"root not granted", rootApp, revisionOf(1, f.pub), launch.User{},
			"cannot install hello: its meta/app.yaml asks to run as root (user: root), which the delegation of its publisher pub does not grant (the root key holder can grant it with 'paddock key delegate --grant-root'; or leave user out to run as the app's own user)"},
		{"classic not granted", classicApp, granted, launch.User{},
			"cannot install hello: its meta/app.yaml asks for classic confinement (no sandbox), which the delegation of its publisher pub does not grant (the root key holder can grant it with 'paddock key delegate --grant-classic'; or build it with confinement: strict)"},
		{"classic granted, not supported yet", classicApp, classicGranted, launch.User{},
			"cannot install hello: classic confinement is not supported yet by this agent (build the app with confinement: strict or devmode)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := f.m.recordUser("hello", tt.rev, tt.mf)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u != tt.want {
				t.Errorf("got user %+v, want %+v", u, tt.want)
			}
			if got, err := launch.ReadUser("hello", 1); err != nil || got != tt.want {
				t.Errorf("got the record %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

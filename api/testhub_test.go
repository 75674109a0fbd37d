package api

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/licensehub/licensehub/auth"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/mem"
)

// testLibrary is what a served test hub runs on: an in-process KV (closed
// when the test ends), a filesystem object store, keys of the test
// authority and the hub, the shipped catalog and a real library over them.
type testLibrary struct {
	kv      *mem.Store
	objects *fs.Store
	ring    *signing.Keyring
	cat     *catalog.Catalog
	lib     *license.Library
}

func newTestLibrary(t testing.TB) *testLibrary {
	t.Helper()
	l := &testLibrary{ring: testkeys.Current(t, "11430000006122244L", hubAuthority)}
	l.kv, l.objects = newTestStores(t)
	var err error
	if l.cat, err = catalog.Load("../configs/catalog"); err != nil {
		t.Fatal(err)
	}
	l.lib, err = license.NewLibrary(license.Config{Objects: l.objects, KV: l.kv, Signers: l.ring,
		Catalog: license.CatalogFunc(l.cat.Validator), DefaultValidUntil: l.cat.DefaultValidUntil, TypeName: l.cat.TypeName})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// loadRegistry writes members (a members.yaml) and loads it.
func loadRegistry(t testing.TB, members string) *auth.Registry {
	t.Helper()
	path := filepath.Join(t.TempDir(), "members.yaml")
	if err := os.WriteFile(path, []byte(members), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := auth.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// newTestStores is an in-process KV (closed when the test ends) and a
// filesystem object store in a fresh directory.
func newTestStores(t testing.TB) (*mem.Store, *fs.Store) {
	t.Helper()
	kv := mem.New()
	t.Cleanup(func() { kv.Close() })
	objects, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return kv, objects
}

// provinceAndIssuer is a registry of two members: the provincial
// platform "province" and the issuing department "issuer", granted the
// given operations (YAML list items, comma-separated).
func provinceAndIssuer(t testing.TB, provinceOps, issuerOps string) *auth.Registry {
	t.Helper()
	return loadRegistry(t, `members:
  - app_id: province
    name: province
    department: test
    roles: [provincial_platform]
    secret: `+string(secretOf("province"))+`
    grants:
      - operations: [`+provinceOps+`]
  - app_id: issuer
    name: issuer
    department: test
    roles: [issuing_department]
    secret: `+string(secretOf("issuer"))+`
    grants:
      - operations: [`+issuerOps+`]
`)
}

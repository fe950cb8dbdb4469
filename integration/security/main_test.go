// Package security_test checks who may call what, over real mTLS connections to every service:
// the identity × method matrix, the refused connections, the agents' host restriction and the
// rotation of certificates under load.
package security_test

import (
	"os"
	"testing"

	"github.com/openhavip/havip/platform/etcdtest"
)

var etcdEndpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &etcdEndpoint)) }

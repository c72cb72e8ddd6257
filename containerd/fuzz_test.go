package containerd

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ctrlift/ctrlift/containerd/boltsafe"
)

// FuzzReadMetaDB feeds arbitrary bytes to the meta.db decoder (containers,
// images, snapshots, content, both sandbox stores) and encodes the result
// as the listings do: never a panic, a hang or an encoding failure.
func FuzzReadMetaDB(f *testing.F) {
	for _, name := range []string{"testdata/sandboxstore/v2.db", "testdata/sandboxstore/v1.7.db", "testdata/cos/meta.db"} {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		if info, err := boltsafe.Validate(b); err == nil {
			b = b[:int(info.HighWater)*info.PageSize] // smaller inputs fuzz faster
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		m, err := ReadMetaDB(data)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		if err != nil {
			return
		}
		if _, err := json.Marshal(m.Containers); err != nil {
			t.Fatalf("containers do not encode: %v", err)
		}
		if _, err := json.Marshal(m.Sandboxes); err != nil {
			t.Fatalf("sandboxes do not encode: %v", err)
		}
	})
}

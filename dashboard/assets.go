package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed web/assets
var assetFS embed.FS

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assetSet is the embedded static files keyed by path under web/assets,
// plus a hash of all of them. Pages link /assets/<hash>/..., so a new build
// gets new URLs and browsers may cache each URL forever; relative ES module
// imports stay inside the same hashed prefix.
type assetSet struct {
	files map[string]asset
	hash  string
}

func mustLoadAssets() *assetSet {
	set, err := loadAssets()
	if err != nil {
		panic(fmt.Sprintf("dashboard: embedded assets: %v", err))
	}
	return set
}

func loadAssets() (*assetSet, error) {
	set := &assetSet{files: map[string]asset{}}
	var names []string
	err := fs.WalkDir(assetFS, "web/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		name := strings.TrimPrefix(p, "web/assets/")
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		set.files[name] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte(set.files[n].etag))
	}
	set.hash = hex.EncodeToString(h.Sum(nil))[:12]
	return set, nil
}

// prefix is the URL prefix pages use for assets.
func (s *assetSet) prefix() string { return "/assets/" + s.hash + "/" }

func isHashSegment(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func (d *Dashboard) serveAsset(c *fiber.Ctx) error {
	name := c.Params("*")
	immutable := false
	if first, rest, ok := strings.Cut(name, "/"); ok && isHashSegment(first) {
		immutable = first == d.assets.hash
		name = rest
	}
	a, ok := d.assets.files[path.Clean("/" + name)[1:]]
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "no asset "+name)
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderETag, a.etag)
	if immutable {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	if c.Get(fiber.HeaderIfNoneMatch) == a.etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	return c.Send(a.body)
}

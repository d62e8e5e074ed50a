package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// AttachmentStore keeps uploaded bytes by key. The file store below
// implements it; an object store can later.
type AttachmentStore interface {
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

// FileStore stores attachments as files in a directory.
type FileStore struct{ dir string }

var keyPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// NewFileStore creates dir when needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("attachment dir %s: %w", dir, err)
	}
	return &FileStore{dir: dir}, nil
}

func (f *FileStore) path(key string) (string, error) {
	if !keyPattern.MatchString(key) {
		return "", fmt.Errorf("attachment key %q is not 32 hex digits", key)
	}
	return filepath.Join(f.dir, key[:2], key), nil
}

// Put writes r under key atomically (temp file, fsync, rename).
func (f *FileStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	p, err := f.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, fmt.Errorf("store attachment %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return 0, fmt.Errorf("store attachment %s: %w", key, err)
	}
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, fmt.Errorf("store attachment %s: %w", key, err)
	}
	return n, nil
}

// Open returns the bytes stored under key.
func (f *FileStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open attachment %s: %w", key, err)
	}
	return file, nil
}

// Delete removes key; a missing key is not an error.
func (f *FileStore) Delete(ctx context.Context, key string) error {
	p, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete attachment %s: %w", key, err)
	}
	return nil
}

// allowedTypes are the sniffed content types accepted for upload; images
// are shown inline, the rest only downloaded.
var allowedTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"application/pdf": true, "text/plain; charset=utf-8": true, "text/plain; charset=utf-16be": true,
	"text/plain; charset=utf-16le": true, "application/zip": true, "application/x-gzip": true,
	"application/octet-stream": false,
}

func inlineType(ct string) bool {
	switch ct {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}

// sniff decides a file's type from its first bytes, ignoring what the client claimed.
func sniff(head []byte) (string, error) {
	ct := http.DetectContentType(head)
	if !allowedTypes[ct] {
		return "", errf("unsupported_type", "files of type %s are not accepted (images, PDF, text, ZIP and Office documents are)", strings.Split(ct, ";")[0])
	}
	return ct, nil
}

// cleanName keeps a file name as text (verbatim, it is only ever rendered
// as text) but bounds its length and drops control characters and paths.
func cleanName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	for utf8.RuneCountInString(name) > 200 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if strings.TrimSpace(name) == "" || name == "." || name == ".." {
		name = "file"
	}
	return name
}

func attachmentURL(id, name string) string {
	return "/files/" + id + "/" + url.PathEscape(name)
}

// saveAttachment sniffs, stores and records one upload.
// siteID is the uploading visitor's site ("" for staff), whose quota it counts against.
func (s *Service) saveAttachment(ctx context.Context, uploaderID, siteID, name string, size int64, r io.Reader) (AttachmentView, error) {
	if size > s.cfg.Limits.MaxAttachmentBytes {
		return AttachmentView{}, errf("file_too_large", "file of %d bytes exceeds %d", size, s.cfg.Limits.MaxAttachmentBytes)
	}
	if siteID != "" {
		if err := s.checkQuota(ctx, uploaderID, siteID, size); err != nil {
			return AttachmentView{}, err
		}
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return AttachmentView{}, fmt.Errorf("read upload: %w", err)
	}
	head = head[:n]
	if n == 0 {
		return AttachmentView{}, errf("no_file", "the file is empty")
	}
	ct, ferr := sniff(head)
	if ferr != nil {
		return AttachmentView{}, ferr
	}
	id := randomHex(16)
	limited := io.LimitReader(io.MultiReader(strings.NewReader(string(head)), r), s.cfg.Limits.MaxAttachmentBytes+1)
	written, err := s.files.Put(ctx, id, limited)
	if err != nil {
		return AttachmentView{}, err
	}
	if written > s.cfg.Limits.MaxAttachmentBytes {
		_ = s.files.Delete(ctx, id)
		return AttachmentView{}, errf("file_too_large", "file exceeds %d bytes", s.cfg.Limits.MaxAttachmentBytes)
	}
	a := ingest.Attachment{ID: id, Name: cleanName(name), ContentType: ct, Size: written}
	if err := s.store.InsertAttachment(ctx, AttachmentRecord{Attachment: a, UploaderID: uploaderID, SiteID: siteID, CreatedAt: time.Now()}); err != nil {
		_ = s.files.Delete(ctx, id)
		return AttachmentView{}, err
	}
	return AttachmentView{Attachment: a, URL: attachmentURL(a.ID, a.Name)}, nil
}

// Keys lists the keys of every stored file (parley migrate copies them).
func (f *FileStore) Keys() ([]string, error) {
	var keys []string
	err := filepath.WalkDir(f.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && keyPattern.MatchString(d.Name()) {
			keys = append(keys, d.Name())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list attachments in %s: %w", f.dir, err)
	}
	return keys, nil
}

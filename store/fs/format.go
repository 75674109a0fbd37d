package fs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/licensehub/licensehub"
)

// An object file is one line of JSON, a '\n', then the content:
//
//	{"etag":"<64 hex digits>","v":1,"contentType":"text/plain","metadata":{"k":"v"}}\n<content>
//
// Keeping the header and the bytes in one file makes a write of both one
// rename (or link), so a reader never sees new bytes with old metadata.
// The content size is the file size minus the header line.

const (
	// formatVersion is the "v" of the header; a file with another version is
	// reported as corrupt rather than misread.
	formatVersion = 1

	// maxHeaderBytes bounds the header line read back from a file. Headers
	// are written well below it (see validateOptions), so a longer first line
	// means the file is not an object file.
	maxHeaderBytes = 16 << 10

	// defaultContentType is what an object without a content type reports,
	// as MinIO does.
	defaultContentType = "application/octet-stream"

	// maxContentTypeBytes and maxMetadataBytes mirror S3's limits (2 KiB of
	// user metadata), so what the filesystem accepts MinIO accepts too.
	maxContentTypeBytes = 256
	maxMetadataBytes    = 2 << 10
)

// etagPlaceholder stands in for the ETag while the content is streamed; the
// real digest has the same length and overwrites it in place.
var etagPlaceholder = strings.Repeat("0", 64)

type header struct {
	ETag        string            `json:"etag"` // first, so it sits at a fixed offset
	Version     int               `json:"v"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// encodeHeader returns the header line for opts with a placeholder ETag and
// the offset at which the real ETag must be written.
func encodeHeader(opts licensehub.PutOptions) (line []byte, etagOffset int64, err error) {
	h := header{
		ETag:        etagPlaceholder,
		Version:     formatVersion,
		ContentType: contentType(opts.ContentType),
		Metadata:    opts.Metadata,
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, 0, err
	}
	const field = `"etag":"`
	i := bytes.Index(b, []byte(field+etagPlaceholder))
	if i < 0 {
		return nil, 0, errors.New("header encoding lost the etag field")
	}
	return append(b, '\n'), int64(i + len(field)), nil
}

// readHeader reads the header line of an object file from br, which reads
// f from its start, and returns the object's info.
func readHeader(f *os.File, br *bufio.Reader, key string) (licensehub.ObjectInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return licensehub.ObjectInfo{}, err
	}
	if fi.IsDir() {
		return licensehub.ObjectInfo{}, errIsDir
	}
	line, err := readLine(br, maxHeaderBytes)
	if err != nil {
		return licensehub.ObjectInfo{}, corrupt(key, err)
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil {
		return licensehub.ObjectInfo{}, corrupt(key, err)
	}
	size := fi.Size() - int64(len(line)) - 1
	switch {
	case h.Version != formatVersion:
		return licensehub.ObjectInfo{}, corrupt(key, fmt.Errorf("unknown format version %d", h.Version))
	case len(h.ETag) != len(etagPlaceholder) || h.ETag == etagPlaceholder:
		return licensehub.ObjectInfo{}, corrupt(key, errors.New("missing etag"))
	case size < 0:
		return licensehub.ObjectInfo{}, corrupt(key, errors.New("negative content size"))
	}
	return licensehub.ObjectInfo{
		Key:         key,
		Size:        size,
		ETag:        h.ETag,
		ContentType: contentType(h.ContentType),
		Metadata:    cloneMetadata(h.Metadata),
		ModTime:     fi.ModTime(),
	}, nil
}

// errIsDir is readHeader's answer for a directory: a key prefix, not an
// object.
var errIsDir = errors.New("a directory, not an object file")

// readLine returns the first line of br without its '\n', failing when the
// line is longer than limit or unterminated.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case len(line) > limit+1:
			return nil, fmt.Errorf("header longer than %d bytes", limit)
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, errors.New("unterminated header")
		default:
			return nil, err
		}
	}
}

func corrupt(key string, err error) error {
	return licensehub.Wrap(err, licensehub.EUNAVAILABLE, "fs: object file of %q is corrupt", key)
}

func contentType(ct string) string {
	if ct == "" {
		return defaultContentType
	}
	return ct
}

// cloneMetadata copies m, returning nil for an empty map so that "no
// metadata" has one representation.
func cloneMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// validateOptions enforces what store/minio enforces, so metadata that one
// backend stores the other stores too: a content type and metadata values
// of printable ASCII without surrounding spaces (HTTP headers would trim
// them), metadata keys of lower-case letters, digits and '-', and at most
// 2 KiB of metadata in all.
func validateOptions(opts licensehub.PutOptions) error {
	if len(opts.ContentType) > maxContentTypeBytes || !isHeaderValue(opts.ContentType) {
		return licensehub.FieldError(licensehub.EINVALID, "contentType",
			"content type must be at most %d bytes of printable ASCII without surrounding spaces", maxContentTypeBytes)
	}
	total := 0
	for k, v := range opts.Metadata {
		if !isMetadataKey(k) {
			return licensehub.FieldError(licensehub.EINVALID, "metadata",
				"metadata key %q must be non-empty lower-case ASCII letters, digits and '-'", k)
		}
		if !isHeaderValue(v) {
			return licensehub.FieldError(licensehub.EINVALID, "metadata",
				"metadata value of %q must be printable ASCII without surrounding spaces", k)
		}
		total += len(k) + len(v)
	}
	if total > maxMetadataBytes {
		return licensehub.FieldError(licensehub.EINVALID, "metadata",
			"metadata is %d bytes, more than the %d allowed", total, maxMetadataBytes)
	}
	return nil
}

func isMetadataKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isHeaderValue(v string) bool {
	if v != strings.TrimSpace(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

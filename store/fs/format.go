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
	// are written well below it (see PutOptions.Validate), so a longer first
	// line means the file is not an object file.
	maxHeaderBytes = 16 << 10
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
		ContentType: opts.Normalized().ContentType,
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
	norm := licensehub.PutOptions{ContentType: h.ContentType, Metadata: h.Metadata}.Normalized()
	return licensehub.ObjectInfo{
		Key:         key,
		Size:        size,
		ETag:        h.ETag,
		ContentType: norm.ContentType,
		Metadata:    norm.Metadata,
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

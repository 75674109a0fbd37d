package licensehub

import "strings"

// Limits on what is stored beside an object's bytes. They mirror S3's, so
// metadata that one ObjectStore accepts every other accepts too.
const (
	DefaultContentType  = "application/octet-stream"
	MaxContentTypeBytes = 256
	MaxMetadataBytes    = 2 << 10 // S3's limit on user metadata
)

// Validate checks the options every ObjectStore enforces: a content type
// and metadata values of printable ASCII without surrounding spaces (HTTP
// headers would trim them), metadata keys of lower-case letters, digits and
// '-', and at most MaxMetadataBytes of metadata in all.
func (o PutOptions) Validate() error {
	if len(o.ContentType) > MaxContentTypeBytes || !isHeaderValue(o.ContentType) {
		return FieldError(EINVALID, "contentType",
			"content type must be at most %d bytes of printable ASCII without surrounding spaces", MaxContentTypeBytes)
	}
	total := 0
	for k, v := range o.Metadata {
		if !isMetadataKey(k) {
			return FieldError(EINVALID, "metadata",
				"metadata key %q must be non-empty lower-case ASCII letters, digits and '-'", k)
		}
		if !isHeaderValue(v) {
			return FieldError(EINVALID, "metadata",
				"metadata value of %q must be printable ASCII without surrounding spaces", k)
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return FieldError(EINVALID, "metadata", "metadata is %d bytes, more than the %d allowed", total, MaxMetadataBytes)
	}
	return nil
}

// Normalized returns the options as a store reports them back: the default
// content type for an empty one, and a copy of the metadata (nil when
// empty, so that "no metadata" has one representation).
func (o PutOptions) Normalized() PutOptions {
	if o.ContentType == "" {
		o.ContentType = DefaultContentType
	}
	if len(o.Metadata) == 0 {
		o.Metadata = nil
		return o
	}
	m := make(map[string]string, len(o.Metadata))
	for k, v := range o.Metadata {
		m[k] = v
	}
	o.Metadata = m
	return o
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

package image

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// openRemote opens an image in a registry. Layers are fetched when opened,
// with ctx; go-containerregistry checks each blob against its digest.
func openRemote(ctx context.Context, ref string, opt Options) (*Image, error) {
	var nopts []name.Option
	if opt.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %w", err)
	}
	want, _, err := opt.platform()
	if err != nil {
		return nil, err
	}
	kc := opt.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(*want)}
	if opt.Insecure {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with Options.Insecure
		ropts = append(ropts, remote.WithTransport(t))
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, err
	}
	if desc.Size > maxMetaSize {
		return nil, fmt.Errorf("manifest of %d bytes, above the %d-byte limit", desc.Size, maxMetaSize)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.Config.Size > maxMetaSize {
		return nil, fmt.Errorf("image config of %d bytes, above the %d-byte limit", m.Config.Size, maxMetaSize)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	md, err := img.Digest()
	if err != nil {
		return nil, err
	}
	out := &Image{Kind: KindRegistry, ID: m.Config.Digest.String(), ManifestDigest: md.String(), Config: cfg}
	out.Layers, err = opt.manifestLayers(m.Layers, cfg, func(d v1.Descriptor) (func() (io.ReadCloser, error), error) {
		return func() (io.ReadCloser, error) {
			l, err := img.LayerByDigest(d.Digest)
			if err != nil {
				return nil, err
			}
			return l.Compressed()
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

package rpm

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/linescan"
	"github.com/vigil-scanner/vigil/internal/model"
)

// manifestRPM is one entry of an rpm-manifest's "rpms" array.
type manifestRPM struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Release   string `json:"release"`
	Arch      string `json:"architecture"`
	SrpmName  string `json:"srpm_name"`
	SrpmNEVRA string `json:"srpm_nevra"` // name-epoch:version-release.src
	NVRA      string `json:"nvra"`
}

// ParseManifest lists the packages of a Red Hat Container Catalog
// rpm-manifest (the JSON document of
// /api/containers/v1/images/id/<id>/rpm-manifest), streaming its "rpms"
// array; other members are skipped. The manifest gives no binary epoch, so
// the epoch of srpm_nevra is used (subpackages share their source's Epoch),
// written only when it is not 0. SourceVersion is the srpm
// version-release. The manifest names no module streams, so Module and
// DBPath are left empty. gpg-pubkey entries are skipped.
func ParseManifest(r io.Reader) ([]model.Package, error) {
	dec := json.NewDecoder(linescan.LimitReader(r, MaxManifestSize))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var pkgs []model.Package
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, manifestErr(dec, err)
		}
		if tok != "rpms" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, manifestErr(dec, err)
			}
			continue
		}
		if pkgs, err = decodeRPMs(dec, pkgs); err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// decodeRPMs reads the "rpms" array, appending to pkgs.
func decodeRPMs(dec *json.Decoder, pkgs []model.Package) ([]model.Package, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	for i := 0; dec.More(); i++ {
		var e manifestRPM
		if err := dec.Decode(&e); err != nil {
			return nil, manifestErr(dec, err)
		}
		if e.Name == "gpg-pubkey" {
			continue
		}
		name, epoch, version, release, ok := splitSource(e.SrpmNEVRA)
		if !ok || e.Name == "" || e.Version == "" || e.Release == "" || (e.SrpmName != "" && e.SrpmName != name) {
			return nil, fmt.Errorf("rpm-manifest: rpms[%d] (%s): incomplete entry or malformed srpm_nevra %q", i, linescan.Clip(e.NVRA), linescan.Clip(e.SrpmNEVRA))
		}
		if len(pkgs) == MaxPackages {
			return nil, fmt.Errorf("rpm-manifest: more than %d packages", MaxPackages)
		}
		v := e.Version + "-" + e.Release
		if epoch != "" && strings.Trim(epoch, "0") != "" {
			v = epoch + ":" + v
		}
		pkgs = append(pkgs, model.Package{
			Kind:          model.KindRPM,
			Name:          e.Name,
			Version:       v,
			Arch:          e.Arch,
			SourceName:    name,
			SourceVersion: version + "-" + release,
		})
	}
	return pkgs, expectDelim(dec, ']')
}

// expectDelim reads the next token, which must be d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return manifestErr(dec, err)
	}
	if tok != d {
		return fmt.Errorf("rpm-manifest: offset %d: got %v, want %q", dec.InputOffset(), tok, d)
	}
	return nil
}

func manifestErr(dec *json.Decoder, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("rpm-manifest: offset %d: %w", dec.InputOffset(), err)
}

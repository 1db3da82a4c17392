// Package atomicfile replaces files atomically (temporary file, fsync, rename),
// so readers see the old or the new content, never a partial file.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data so that readers see either the old or the
// new content, never a partial file: write a temporary file in the same
// directory, sync it, then rename it over path.
func Write(path string, data []byte) error {
	return WriteVia(path, filepath.Dir(path), data)
}

// WriteVia is Write with the temporary file made in tmpDir instead of next
// to path. Traefik's file provider reloads on every change in the directory
// it watches, a temporary file included, so a file it reads is best
// prepared elsewhere. The rename needs both directories on one file system;
// when they are not (a mounted volume, say), the temporary file is made next
// to path after all.
func WriteVia(path, tmpDir string, data []byte) error {
	name, err := writeTemp(tmpDir, filepath.Base(path), data)
	if err != nil {
		return err
	}
	defer os.Remove(name) //nolint:errcheck // gone after a successful rename
	err = os.Rename(name, path)
	if errors.Is(err, syscall.EXDEV) && tmpDir != filepath.Dir(path) {
		return WriteVia(path, filepath.Dir(path), data)
	}
	if err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}

func writeTemp(dir, base string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	name := tmp.Name()
	fail := func(step string, err error) (string, error) {
		tmp.Close()
		os.Remove(name) //nolint:errcheck // best effort
		return "", fmt.Errorf("%s %s: %w", step, name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail("write", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail("chmod", err)
	}
	if err := tmp.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name) //nolint:errcheck // best effort
		return "", fmt.Errorf("close %s: %w", name, err)
	}
	return name, nil
}

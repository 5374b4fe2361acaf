package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// LayerIndex returns the cached index result of a layer, by diff ID and
// indexer version.
func (s *Store) LayerIndex(ctx context.Context, diffID, indexer string) ([]byte, bool, error) {
	return s.getBlob(ctx, `SELECT result FROM layer_index WHERE diff_id = ? AND indexer = ?`, diffID, indexer)
}

// PutLayerIndex caches a layer's index result. A concurrent writer of the
// same layer wins silently: both computed the same content.
func (s *Store) PutLayerIndex(ctx context.Context, diffID, indexer string, result []byte) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO layer_index (diff_id, indexer, result, indexed_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (diff_id, indexer) DO NOTHING`), diffID, indexer, result, now())
	if err != nil {
		return fmt.Errorf("cache layer %s: %w", diffID, err)
	}
	return nil
}

// ImageIndex returns the cached index report of an image, by image ID
// (config digest) and indexer version.
func (s *Store) ImageIndex(ctx context.Context, imageID, indexer string) ([]byte, bool, error) {
	return s.getBlob(ctx, `SELECT report FROM image_index WHERE image_id = ? AND indexer = ?`, imageID, indexer)
}

// PutImageIndex caches an image's index report.
func (s *Store) PutImageIndex(ctx context.Context, imageID, indexer string, report []byte) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO image_index (image_id, indexer, report, indexed_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (image_id, indexer) DO NOTHING`), imageID, indexer, report, now())
	if err != nil {
		return fmt.Errorf("cache image %s: %w", imageID, err)
	}
	return nil
}

func (s *Store) getBlob(ctx context.Context, query string, args ...any) ([]byte, bool, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, s.q(query), args...).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

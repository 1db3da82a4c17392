package catalog

import (
	"context"
	"fmt"

	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
)

// RotateReport counts what RotateKeys did, per kind of value.
type RotateReport struct {
	Reencrypted map[string]int `json:"reencrypted"`
	Current     int            `json:"already_current"`
}

// RotateKeys re-encrypts every encrypted value in the database (secret
// values, registry passwords, node tokens) that is not yet sealed with
// box's current key, in one transaction: either every value moves to the
// current key or nothing changes. Values sealed with a key box does not
// know (neither secret.key nor secret.oldkeys) abort the rotation with an
// error naming the row.
func RotateKeys(ctx context.Context, st *store.Store, box *secretbox.Box) (RotateReport, error) {
	rep := RotateReport{Reencrypted: map[string]int{}}
	err := st.InTx(ctx, func(tx *store.Store) error {
		rows, err := store.LockSealedValues(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Value.KeyID == box.CurrentKeyID() {
				rep.Current++
				continue
			}
			aad := aadOf(r.Kind, r.ID)
			pt, err := box.Open(r.Value.Ciphertext, r.Value.KeyID, aad)
			if err != nil {
				return fmt.Errorf("%s %d: %w", r.Kind, r.ID, err)
			}
			enc, keyID, err := box.Seal(pt, aad)
			clear(pt)
			if err != nil {
				return fmt.Errorf("%s %d: %w", r.Kind, r.ID, err)
			}
			r.Value = store.Sealed{Ciphertext: enc, KeyID: keyID}
			if err := store.ReplaceSealedValue(ctx, tx, r); err != nil {
				return err
			}
			rep.Reencrypted[r.Kind]++
		}
		return nil
	})
	if err != nil {
		return RotateReport{}, fmt.Errorf("rotate key: %w", err)
	}
	return rep, nil
}

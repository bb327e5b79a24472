package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/jitform/jitform/providers"
)

// ObservedDigest is a hex SHA-256 over a group's observed member IDs, sorted
// and deduplicated, so that the order a provider returns them in does not
// matter. An unreadable group has no digest ("").
func ObservedDigest(o providers.Observation) string {
	if o.Err != nil {
		return ""
	}
	ids := make([]string, len(o.Members))
	for i, m := range o.Members {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// planID hashes everything in the plan but its ID and CreatedAt (which the
// CLI may set): two plans with the same ID plan the same thing from the same
// observations. ReadPlanFile recomputes it to detect an edited plan file.
func planID(p *Plan) (string, error) {
	q := *p
	q.ID = ""
	q.CreatedAt = q.At
	b, err := json.Marshal(normalised(&q))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

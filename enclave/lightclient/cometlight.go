package lightclient

import (
	"errors"
	"time"

	"github.com/cometbft/cometbft/light"
	cmttypes "github.com/cometbft/cometbft/types"
)

// lightVerifyAdjacent is light.VerifyAdjacent.
func lightVerifyAdjacent(trusted, untrusted *cmttypes.SignedHeader, untrustedVals *cmttypes.ValidatorSet,
	trustingPeriod time.Duration, now time.Time, maxClockDrift time.Duration,
) error {
	return light.VerifyAdjacent(trusted, untrusted, untrustedVals, trustingPeriod, now, maxClockDrift)
}

// lightErrOldHeaderExpired is the error light.VerifyAdjacent returns for an
// expired trusted header.
func lightErrOldHeaderExpired(trusted *cmttypes.SignedHeader, trustingPeriod time.Duration, now time.Time) error {
	return light.ErrOldHeaderExpired{At: trusted.Time.Add(trustingPeriod), Now: now}
}

func isExpired(err error) bool {
	var e light.ErrOldHeaderExpired
	return errors.As(err, &e)
}

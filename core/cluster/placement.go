package cluster

import "hash/fnv"

// Winner is the instance an account belongs on among the live instances:
// rendezvous (highest random weight) hashing, so when an instance joins or
// leaves only the accounts it wins or held change hands, and every daemon
// with the same instance list computes the same answer without talking to
// the others. "" when there is no instance.
func Winner(accountID string, instances []string) string {
	best, bestScore := "", uint64(0)
	for _, in := range instances {
		s := score(accountID, in)
		if best == "" || s > bestScore || (s == bestScore && in < best) {
			best, bestScore = in, s
		}
	}
	return best
}

// score is the weight of (account, instance): FNV-1a over both, then a
// 64-bit finaliser (splitmix64's) so that ids differing in one character
// spread evenly.
func score(accountID, instance string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(instance))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(accountID))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ErrNotAtomic is what ProbeAtomicUpdates wraps when the server let two
// conditional updates match or lost an increment.
var ErrNotAtomic = errors.New("conditional updates are not atomic")

// ProbeOptions sizes ProbeAtomicUpdates.
type ProbeOptions struct {
	Racers int // goroutines racing each round; default 16
	Rounds int // default 20
}

// ProbeAtomicUpdates checks, rather than assumes, that db's server runs
// conditional updates atomically. First, for Rounds rounds, Racers
// goroutines race to move one document from {v: 0} to {v: 1}, half with
// findOneAndUpdate and half with updateOne, each filtering on {_id, v: 0}:
// exactly one may match. Then, for Rounds rounds, each racer $inc-s a
// counter once, which must end at Racers (no lost read-modify-write). It
// returns an error wrapping ErrNotAtomic that names the first violation,
// another error when a command failed, and nil when every round held. It
// uses the collection "atomic_probe", dropped afterwards.
func ProbeAtomicUpdates(ctx context.Context, db *mongo.Database, o ProbeOptions) error {
	if o.Racers <= 1 {
		o.Racers = 16
	}
	if o.Rounds <= 0 {
		o.Rounds = 20
	}
	coll := db.Collection("atomic_probe")
	defer func() { _ = coll.Drop(context.WithoutCancel(ctx)) }()
	for round := range o.Rounds {
		if err := probeConditional(ctx, coll, round, o.Racers); err != nil {
			return fmt.Errorf("probe conditional round %d: %w", round, err)
		}
	}
	for round := range o.Rounds {
		if err := probeIncrement(ctx, coll, round, o.Racers); err != nil {
			return fmt.Errorf("probe increment round %d: %w", round, err)
		}
	}
	return nil
}

// race starts racers goroutines at once and collects the racers for which
// f returned true, and f's errors.
func race(racers int, f func(racer int) (bool, error)) (winners []int, err error) {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
	)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			won, err := f(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if won {
				winners = append(winners, i)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		return winners, fmt.Errorf("%d of %d racers failed: %w", len(errs), racers, errors.Join(errs...))
	}
	return winners, nil
}

func probeConditional(ctx context.Context, coll *mongo.Collection, round, racers int) error {
	id := fmt.Sprintf("flag-%d", round)
	if _, err := coll.InsertOne(ctx, bson.M{"_id": id, "v": 0}); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	winners, err := race(racers, func(i int) (bool, error) { return raceOnce(ctx, coll, id, i) })
	if err != nil {
		return err
	}
	if len(winners) != 1 {
		return fmt.Errorf("%w: %d of %d conditional updates on {_id, v: 0} matched (racers %v), want exactly 1", ErrNotAtomic, len(winners), racers, winners)
	}
	var doc struct {
		V      int `bson:"v"`
		Winner int `bson:"winner"`
	}
	if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if doc.V != 1 || doc.Winner != winners[0] {
		return fmt.Errorf("%w: document is {v: %d, winner: %d}, want {v: 1, winner: %d}", ErrNotAtomic, doc.V, doc.Winner, winners[0])
	}
	return nil
}

func probeIncrement(ctx context.Context, coll *mongo.Collection, round, racers int) error {
	id := fmt.Sprintf("counter-%d", round)
	if _, err := coll.InsertOne(ctx, bson.M{"_id": id, "n": 0}); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if _, err := race(racers, func(int) (bool, error) {
		_, err := coll.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$inc": bson.M{"n": 1}})
		return false, err
	}); err != nil {
		return err
	}
	var doc struct {
		N int `bson:"n"`
	}
	if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&doc); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if doc.N != racers {
		return fmt.Errorf("%w: %d racers each $inc-ed a counter once and it reads %d", ErrNotAtomic, racers, doc.N)
	}
	return nil
}

// raceOnce tries the conditional update, by findOneAndUpdate for even
// racers and updateOne for odd ones.
func raceOnce(ctx context.Context, coll *mongo.Collection, id string, racer int) (won bool, err error) {
	filter := bson.M{"_id": id, "v": 0}
	update := bson.M{"$set": bson.M{"v": 1, "winner": racer}}
	if racer%2 == 0 {
		err := coll.FindOneAndUpdate(ctx, filter, update).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return false, nil
		}
		return err == nil, err
	}
	res, err := coll.UpdateOne(ctx, filter, update)
	if err != nil {
		return false, err
	}
	return res.ModifiedCount == 1, nil
}

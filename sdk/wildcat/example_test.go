package wildcat_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/wildcathub/wildcat/sdk/wildcat"
)

// The examples run against the daemon TestMain starts (daemonURL, with the
// admin key adminKey): the sim driver, the account demo connected.

func Example() {
	ctx := context.Background()
	c, err := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	if err != nil {
		log.Fatal(err)
	}
	acct, err := c.Account(ctx, "demo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(acct.ID, acct.State)

	sent, err := c.SendText(ctx, "demo", "+15551234567", "Your order has shipped")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sent.Status, !sent.ScheduledAt.IsZero())
	// Output:
	// demo connected
	// pending true
}

func ExampleClient_Messages() {
	ctx := context.Background()
	c, _ := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	for i := 1; i <= 3; i++ {
		// A contact writes to the sim account.
		if _, err := c.SimulateInbound(ctx, "demo", wildcat.SimInbound{From: "+15550100200", ID: fmt.Sprintf("EXAMPLE%d", i), Text: fmt.Sprintf("message %d", i)}); err != nil {
			log.Fatal(err)
		}
	}
	// Newest first, two per request; the iterator fetches the pages.
	for m, err := range c.Messages(ctx, "demo", wildcat.MessageQuery{ChatID: "+15550100200", Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Text)
	}
	// Output:
	// message 3
	// message 2
	// message 1
}

func ExampleClient_Events() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	first, err := c.SimulateInbound(ctx, "demo", wildcat.SimInbound{From: "+15550100300", Text: "first"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.SimulateInbound(ctx, "demo", wildcat.SimInbound{From: "+15550100300", Text: "second"}); err != nil {
		log.Fatal(err)
	}
	// Resume after the first message: the stream starts with what came
	// after it, then goes on live.
	q := wildcat.EventQuery{Accounts: []string{"demo"}, Kinds: []string{"message.received"}, LastEventID: first.EventID}
	for ev, err := range c.Events(ctx, q) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Kind, ev.Message.Text)
		break
	}
	// Output:
	// message.received second
}

func ExampleError() {
	c, _ := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	_, err := c.Account(context.Background(), "nobody")
	if errors.Is(err, wildcat.ErrNotFound) {
		fmt.Println("no such account")
	}
	_, err = c.SendText(context.Background(), "demo", "not a phone number", "hi")
	var apiErr *wildcat.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Field)
	}
	// Output:
	// no such account
	// 422 to
}

func ExampleClient_CreateWebhook() {
	ctx := context.Background()
	c, _ := wildcat.New(daemonURL, wildcat.WithKey(adminKey))
	w, err := c.CreateWebhook(ctx, wildcat.WebhookInput{
		ID:     wildcat.Ptr("example-crm"),
		URL:    wildcat.Ptr("https://crm.example.com/hooks/wildcat"),
		Events: &[]string{"message.received", "message.status"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.ID, w.Enabled, w.Secret != "")
	if err := c.DeleteWebhook(ctx, w.ID); err != nil {
		log.Fatal(err)
	}
	// Output:
	// example-crm true true
}

package ids_test

import (
	"fmt"

	"github.com/openhavip/havip/platform/ids"
)

// IDs from a counter: distinct numbers give distinct IDs, and neighbours look nothing alike.
func ExampleFromNumber() {
	const seed = 42 // in a real installation: random, kept beside the counter (see idseq)
	for n := range uint64(3) {
		fmt.Println(ids.FromNumber(ids.Address, n, seed))
	}
	// Output:
	// eip-kwj8ypz5
	// eip-7ikkrcwb
	// eip-w65s9eps
}

func ExampleValid() {
	fmt.Println(ids.Valid(ids.Vpc, "vpc-0a9z8y7x"))
	fmt.Println(ids.Valid(ids.Vpc, "subnet-0a9z8y7x"))
	fmt.Println(ids.Valid(ids.Vpc, "vpc-0A9Z8Y7X"))
	fmt.Println(ids.Valid(ids.Vpc, ids.New(ids.Vpc)))
	// Output:
	// true
	// false
	// false
	// true
}

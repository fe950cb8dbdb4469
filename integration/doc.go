// Package integration holds the tests that run several services together on a real etcd.
//
// Each service module depends only on the platform and proto modules; tests that need a
// sibling service (havipd needs ipamd, the broker tests a HAVIP, eipd's NAT rules follow the
// broker) live here, one package per service under test.
package integration

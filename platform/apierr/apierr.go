// Package apierr defines the domain errors every service returns and, in one table, the gRPC status each maps to.
//
// A domain error is a Tencent-style reason and a message; it knows nothing of gRPC. The table in
// status.go gives each reason its one gRPC code (the same reason always carries the same code),
// and ToStatus applies it where a handler returns, as etcd's v3rpc/util.go does.
package apierr

import (
	"fmt"
)

// Domain is the ErrorInfo domain every status carries.
const Domain = "havip.openhavip.io"

// Reason codes, named as Tencent Cloud users know them. The table in status.go gives each its
// gRPC code and meaning; docs/errors.md lists them with the calls that return them.
const (
	ReasonInvalidParameter          = "InvalidParameter"
	ReasonInvalidParameterValue     = "InvalidParameterValue"
	ReasonMalformed                 = "InvalidParameterValue.Malformed"
	ReasonNotIPv4                   = "InvalidParameterValue.NotIpv4"
	ReasonTooLong                   = "InvalidParameterValue.TooLong"
	ReasonEmpty                     = "InvalidParameterValue.Empty"
	ReasonRange                     = "InvalidParameterValue.Range"
	ReasonReserved                  = "InvalidParameterValue.Reserved"
	ReasonDuplicate                 = "InvalidParameterValue.Duplicate"
	ReasonOccupied                  = "InvalidParameterValue.Occupied"
	ReasonSubnetConflict            = "InvalidParameterValue.SubnetConflict"
	ReasonSubnetRange               = "InvalidParameterValue.SubnetRange"
	ReasonCidrNotPrivate            = "InvalidParameterValue.CidrNotPrivate"
	ReasonLimitExceeded             = "InvalidParameterValue.LimitExceeded"
	ReasonVpcMismatch               = "InvalidParameterValue.VpcMismatch"
	ReasonInstanceType              = "InvalidParameterValue.InstanceType"
	ReasonMixedInstanceType         = "InvalidParameterValue.MixedInstanceType"
	ReasonFilterInvalidKey          = "InvalidParameter.FilterInvalidKey"
	ReasonCoexist                   = "InvalidParameter.Coexist"
	ReasonIdempotentParameterChange = "InvalidParameter.IdempotentParameterMismatch"
	ReasonNotAssociated             = "UnsupportedOperation.NotAssociated"
	ReasonBindEIP                   = "UnsupportedOperation.BindEIP"
	ReasonAddressBound              = "UnsupportedOperation.AddressBound"
	ReasonAddressNotBound           = "UnsupportedOperation.AddressNotBound"
	ReasonHaVipBound                = "UnsupportedOperation.HaVipBound"
	ReasonUnsupportedOperation      = "UnsupportedOperation"
	ReasonMethodNotAllowed          = "UnsupportedOperation.MethodNotAllowed"
	ReasonPrimaryEni                = "UnsupportedOperation.PrimaryEni"
	ReasonAttached                  = "UnsupportedOperation.Attached"
	ReasonNotAttached               = "UnsupportedOperation.NotAttached"
	ReasonReservationExpired        = "UnsupportedOperation.ReservationExpired"
	ReasonResourceInUse             = "ResourceInUse"
	ReasonAddressInUse              = "UnsupportedOperation.AddressInUse"
	ReasonResourceNotFound          = "ResourceNotFound"
	ReasonResourceInsufficient      = "ResourceInsufficient"
	ReasonConflict                  = "FailedOperation.Conflict"
	ReasonReservationLost           = "FailedOperation.ReservationLost"
	ReasonUnavailable               = "ResourceUnavailable"
	ReasonStoreUnavailable          = "ResourceUnavailable.Store"
	ReasonTimeout                   = "FailedOperation.Timeout"
	ReasonCanceled                  = "FailedOperation.Canceled"
	ReasonUnknownRoute              = "UnknownRoute"
	ReasonAuthFailure               = "AuthFailure"
	ReasonUnauthorizedOperation     = "UnauthorizedOperation"
	ReasonInternal                  = "InternalError"
)

// Error is a domain error: a Tencent-style reason and a message for humans.
type Error struct {
	Reason  string
	Message string
	// Metadata is copied into the ErrorInfo (for example the field that was wrong).
	Metadata map[string]string
}

// Error implements error.
func (e *Error) Error() string { return e.Reason + ": " + e.Message }

// Is reports whether target is a sentinel (an *Error with no message) of the same reason, so
// errors.Is(err, apierr.ErrConflict) matches every conflict whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.Message == ""
}

// New returns a domain error of a reason from the table.
func New(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// NotFound is an unknown ID, or one that belongs to another account.
func NotFound(format string, args ...any) *Error {
	return New(ReasonResourceNotFound, format, args...)
}

// Conflict is a write that lost to concurrent changes too many times: the caller may retry.
func Conflict(format string, args ...any) *Error { return New(ReasonConflict, format, args...) }

// AuthFailure is a request with no (valid) credentials or account.
func AuthFailure(format string, args ...any) *Error {
	return New(ReasonAuthFailure, format, args...)
}

// Sentinels for errors.Is checks on a reason alone.
var (
	ErrNotFound = &Error{Reason: ReasonResourceNotFound}
	ErrConflict = &Error{Reason: ReasonConflict}
)

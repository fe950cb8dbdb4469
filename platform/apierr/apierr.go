// Package apierr defines the domain errors every service returns and maps them to gRPC statuses in one place.
package apierr

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain every status carries.
const Domain = "havip.openhavip.io"

// Reason codes, named as Tencent Cloud users know them.
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
	ReasonSubnetConflict            = "InvalidParameterValue.SubnetConflict"
	ReasonSubnetRange               = "InvalidParameterValue.SubnetRange"
	ReasonCidrNotPrivate            = "InvalidParameterValue.CidrNotPrivate"
	ReasonLimitExceeded             = "InvalidParameterValue.LimitExceeded"
	ReasonVpcMismatch               = "InvalidParameterValue.VpcMismatch"
	ReasonInstanceType              = "InvalidParameterValue.InstanceType"
	ReasonMixedInstanceType         = "InvalidParameterValue.MixedInstanceType"
	ReasonNotAssociated             = "UnsupportedOperation.NotAssociated"
	ReasonBindEIP                   = "UnsupportedOperation.BindEIP"
	ReasonAddressBound              = "UnsupportedOperation.AddressBound"
	ReasonAddressNotBound           = "UnsupportedOperation.AddressNotBound"
	ReasonHaVipBound                = "UnsupportedOperation.HaVipBound"
	ReasonFilterInvalidKey          = "InvalidParameter.FilterInvalidKey"
	ReasonCoexist                   = "InvalidParameter.Coexist"
	ReasonResourceNotFound          = "ResourceNotFound"
	ReasonResourceInUse             = "ResourceInUse"
	ReasonResourceInsufficient      = "ResourceInsufficient"
	ReasonUnsupportedOperation      = "UnsupportedOperation"
	ReasonPrimaryEni                = "UnsupportedOperation.PrimaryEni"
	ReasonAttached                  = "UnsupportedOperation.Attached"
	ReasonNotAttached               = "UnsupportedOperation.NotAttached"
	ReasonReservationExpired        = "UnsupportedOperation.ReservationExpired"
	ReasonIdempotentParameterChange = "InvalidParameter.IdempotentParameterMismatch"
	ReasonAuthFailure               = "AuthFailure"
	ReasonInternal                  = "InternalError"
)

// Error is a domain error: a gRPC code, a Tencent-style reason and a message for humans.
type Error struct {
	Code    codes.Code
	Reason  string
	Message string
	// Metadata is copied into the ErrorInfo (for example the field that was wrong).
	Metadata map[string]string
}

// Error implements error.
func (e *Error) Error() string { return e.Reason + ": " + e.Message }

// Is reports whether target is an *Error with the same reason, so errors.Is works on reasons.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.Message == ""
}

func newf(code codes.Code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is checks on reason alone.
var (
	ErrNotFound             = &Error{Reason: ReasonResourceNotFound}
	ErrResourceInsufficient = &Error{Reason: ReasonResourceInsufficient}
)

// InvalidArgument is a request the service refuses for what it says.
func InvalidArgument(reason, format string, args ...any) *Error {
	return newf(codes.InvalidArgument, reason, format, args...)
}

// NotFound is an unknown ID, or one that belongs to another account.
func NotFound(format string, args ...any) *Error {
	return newf(codes.NotFound, ReasonResourceNotFound, format, args...)
}

// AlreadyExists is a resource or value that is taken.
func AlreadyExists(reason, format string, args ...any) *Error {
	return newf(codes.AlreadyExists, reason, format, args...)
}

// FailedPrecondition is a request that the current state forbids.
func FailedPrecondition(reason, format string, args ...any) *Error {
	return newf(codes.FailedPrecondition, reason, format, args...)
}

// Aborted is a write that lost to concurrent changes too many times.
func Aborted(reason, format string, args ...any) *Error {
	return newf(codes.Aborted, reason, format, args...)
}

// ResourceExhausted is a pool with nothing left.
func ResourceExhausted(reason, format string, args ...any) *Error {
	return newf(codes.ResourceExhausted, reason, format, args...)
}

// Unauthenticated is a request with no (valid) account.
func Unauthenticated(format string, args ...any) *Error {
	return newf(codes.Unauthenticated, ReasonAuthFailure, format, args...)
}

// ToStatus converts any error a handler returns into the gRPC status a client sees.
// Domain errors keep their code and carry an ErrorInfo with their reason; context errors map to
// Canceled / DeadlineExceeded; statuses pass through; anything else is Internal.
func ToStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	var de *Error
	switch {
	case errors.As(err, &de):
		st := status.New(de.Code, de.Message)
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: de.Reason, Domain: Domain, Metadata: de.Metadata}); derr == nil {
			return withInfo
		}
		return st
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, err.Error())
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	st := status.New(codes.Internal, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonInternal, Domain: Domain}); derr == nil {
		return withInfo
	}
	return st
}

// FromStatus turns a status received from another service back into a domain error, so a
// service that calls another passes its reasons through unchanged. Errors without ErrorInfo
// are returned as they are.
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return err
	}
	if reason := Reason(err); reason != "" {
		return &Error{Code: st.Code(), Reason: reason, Message: st.Message()}
	}
	return err
}

// Reason returns the ErrorInfo reason of a gRPC status error, or of a domain error, or "".
func Reason(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return de.Reason
	}
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

package gateway

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/metadata"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/apierr"
)

// keepalivedConfigPattern is the route of DescribeHaVipKeepalivedConfig (gateway/http_rules.yaml).
const keepalivedConfigPattern = "GET /v1/havips/{havip_id}/keepalived-config"

// keepalivedConfig serves GET /v1/havips/{havip_id}/keepalived-config as plain text, ready to
// paste into keepalived.conf, when the request asks for it with ?format=text or an Accept
// header naming text/plain but not application/json: every server's configuration, each after
// a comment line naming its instance, or with ?instance_id= that server's alone. Every other
// request goes to the JSON route (next), as before. Errors are JSON, as on every route.
func (g *Gateway) keepalivedConfig(client havipv1.HaVipServiceClient, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		format := q.Get("format")
		switch format {
		case "":
			if acceptsTextOnly(r.Header.Values("Accept")) {
				format = "text"
			}
		case "text", "json":
		default:
			g.writeProblem(w, r, http.StatusBadRequest, apierr.ReasonInvalidParameter, fmt.Sprintf("format %q: want text or json", format))
			return
		}
		if format != "text" {
			if q.Has("instance_id") {
				g.writeProblem(w, r, http.StatusBadRequest, apierr.ReasonInvalidParameter, "instance_id selects one configuration of the text form: add format=text")
				return
			}
			if q.Has("format") { // the JSON route knows no such parameter
				q.Del("format")
				r = r.Clone(r.Context())
				r.URL.RawQuery = q.Encode()
			}
			next.ServeHTTP(w, r)
			return
		}
		for k := range q {
			if k != "format" && k != "interface" && k != "instance_id" {
				g.writeProblem(w, r, http.StatusBadRequest, apierr.ReasonInvalidParameter, fmt.Sprintf("unknown query parameter %q", k))
				return
			}
		}
		ctx := metadata.NewOutgoingContext(r.Context(), g.callMetadata(r.Context()))
		havipID := r.PathValue("havip_id")
		resp, err := client.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: havipID, Interface: q.Get("interface")})
		if err != nil {
			g.writeError(ctx, nil, nil, w, r, err)
			return
		}
		text, found := keepalivedText(resp.GetConfigSet(), q.Get("instance_id"))
		if !found {
			g.writeProblem(w, r, http.StatusNotFound, apierr.ReasonResourceNotFound,
				fmt.Sprintf("%s is not in the switch range of %s", q.Get("instance_id"), havipID))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte(text))
	})
}

// keepalivedText is the text of every configuration, each after a comment line naming its
// instance, or with instanceID that instance's configuration alone (found is false when no
// configuration is that instance's).
func keepalivedText(configs []*havipv1.KeepalivedConfig, instanceID string) (text string, found bool) {
	if instanceID != "" {
		for _, c := range configs {
			if c.GetInstanceId() == instanceID {
				return c.GetConfig(), true
			}
		}
		return "", false
	}
	var b strings.Builder
	for i, c := range configs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# ---- keepalived.conf of %s (%s, %s) ----\n", c.GetInstanceId(), c.GetNetworkInterfaceId(), c.GetUnicastSrcIp())
		b.WriteString(c.GetConfig())
	}
	return b.String(), true
}

// acceptsTextOnly reports whether Accept headers name text/plain and not application/json.
func acceptsTextOnly(accept []string) bool {
	text, json := false, false
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
				continue // q=0: not acceptable
			}
			switch mt {
			case "text/plain":
				text = true
			case "application/json":
				json = true
			}
		}
	}
	return text && !json
}

package dynconfig

import "time"

// ActivityPath is where nullops-ingress reports traffic: POST an
// ActivityReport with the ingress token; the server answers
// {"updated": n}, how many deployments' TTLs moved.
const ActivityPath = "/api/v1/ingress/activity"

// ActivityReport is the body of a report to ActivityPath: when the ingress
// last proxied a request to each deployment (traffic counts as activity for
// the TTL where the environment says so).
type ActivityReport struct {
	Deployments []Activity `json:"deployments"`
}

// Activity is one deployment's last request time.
type Activity struct {
	ID            int64     `json:"id"`
	LastRequestAt time.Time `json:"last_request_at"`
}

package api

import (
	"encoding/json"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/usage"
)

// Conversions of the catalog's, access's, audit's and usage's rows to the
// REST contract (package restapi), one per resource, field by field
// (TestContractCoversTheRows keeps them complete).

func registryOut(r store.Registry) restapi.Registry {
	return restapi.Registry{ID: r.ID, Name: r.Name, URL: r.URL, Username: r.Username, HasPassword: r.HasPassword,
		Insecure: r.Insecure, IsDefault: r.IsDefault, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func tagsOut(l registry.Listing) restapi.Tags {
	return restapi.Tags{Tags: l.Tags, Order: l.Order, FetchedAt: l.FetchedAt}
}

func healthOut(h *protocol.Health) *restapi.Health {
	if h == nil {
		return nil
	}
	return &restapi.Health{HTTP: h.HTTP, Command: h.Command, Timeout: h.Timeout, Interval: h.Interval}
}

func healthIn(h *restapi.Health) *protocol.Health {
	if h == nil {
		return nil
	}
	return &protocol.Health{HTTP: h.HTTP, Command: h.Command, Timeout: h.Timeout, Interval: h.Interval}
}

func serviceOut(s store.Service) restapi.Service {
	return restapi.Service{ID: s.ID, Name: s.Name, RegistryID: s.RegistryID, RegistryName: s.RegistryName, Image: s.Image,
		TagMode: s.TagMode, Tag: s.Tag, TagPattern: s.TagPattern, Ports: s.Ports, Env: s.Env, Health: healthOut(s.Health),
		Description: s.Description, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func pluginOut(p store.Plugin) restapi.Plugin {
	return restapi.Plugin{ID: p.ID, Name: p.Name, RegistryID: p.RegistryID, RegistryName: p.RegistryName, Image: p.Image,
		Tag: p.Tag, Description: p.Description, ParamsSchema: p.ParamsSchema, CPU: p.CPU, MemoryMB: p.MemoryMB,
		TimeoutSeconds: p.TimeoutSeconds, Timeout: (time.Duration(p.TimeoutSeconds) * time.Second).String(),
		JoinNetwork: p.JoinNetwork, DockerSocket: p.DockerSocket, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func secretOut(s store.Secret) restapi.Secret {
	return restapi.Secret{ID: s.ID, Name: s.Name, Scope: s.Scope, ProjectID: s.ProjectID, ProjectName: s.ProjectName,
		UpdatedByID: s.UpdatedByID, UpdatedByName: s.UpdatedByName, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func pipelineVersionOut(v store.PipelineVersion) restapi.PipelineVersion {
	return restapi.PipelineVersion{ID: v.ID, ProjectID: v.ProjectID, Version: v.Version, Graph: v.Graph,
		PluginPins: v.PluginPins, CreatedByID: v.CreatedByID, CreatedByName: v.CreatedByName, CreatedAt: v.CreatedAt}
}

func memberOut(m store.TeamMember) restapi.TeamMember {
	return restapi.TeamMember{UserID: m.UserID, Username: m.Username, DisplayName: m.DisplayName, AddedAt: m.AddedAt}
}

func grantOut(g store.Grant) restapi.Grant {
	return restapi.Grant{ID: g.ID, TeamID: g.TeamID, TeamName: g.TeamName, ProjectID: g.ProjectID,
		EnvironmentID: g.EnvironmentID, Level: g.Level, CreatedAt: g.CreatedAt}
}

// rawJSON is a detail read back from the database (json.RawMessage) or,
// for an entry not read back, the value marshalled.
func rawJSON(v any) json.RawMessage {
	switch d := v.(type) {
	case nil:
		return nil
	case json.RawMessage:
		return d
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func auditOut(e store.AuditEntry) restapi.AuditEntry {
	return restapi.AuditEntry{ID: e.ID, ActorID: e.ActorID, ActorName: e.ActorName, Action: e.Action,
		TargetType: e.TargetType, TargetID: e.TargetID, ProjectID: e.ProjectID, EnvironmentID: e.EnvironmentID,
		ClientAddr: e.ClientAddr, Detail: rawJSON(e.Detail), CreatedAt: e.CreatedAt}
}

func historyOut(h store.HistoryEntry) restapi.HistoryEntry {
	return restapi.HistoryEntry{ID: h.ID, ActorID: h.ActorID, ActorName: h.ActorName, Action: h.Action, Detail: h.Detail, At: h.At}
}

func nodeEventOut(e store.NodeEvent) restapi.NodeEvent {
	return restapi.NodeEvent{ID: e.ID, NodeID: e.NodeID, Kind: e.Kind, Message: e.Message, Remote: e.Remote, Source: e.Source, At: e.At}
}

func verdictOut(v deploy.PlacementVerdict) restapi.PlacementVerdict {
	return restapi.PlacementVerdict{Fits: v.Fits, Reason: v.Reason, CPU: v.CPU, MemoryMB: v.MemoryMB}
}

func usageOut(u usage.Deployment) restapi.Usage {
	out := restapi.Usage{StepSeconds: u.StepSeconds, WindowSeconds: u.WindowSeconds, From: u.From, To: u.To,
		Services: make([]restapi.UsageSeries, len(u.Services))}
	for i, s := range u.Services {
		out.Services[i] = restapi.UsageSeries{Service: s.Service, Points: s.Points}
	}
	return out
}

package api

import (
	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/store"
)

// Conversions of domain rows to the REST contract (package restapi).

// deploymentOut is a deployment as every route shows it (restapi.Deployment)
// without its detail: the row of a list.
func deploymentOut(d store.Deployment, access string, urls map[string]string, deg deploy.Degradation) restapi.Deployment {
	if urls == nil {
		urls = map[string]string{}
	}
	return restapi.Deployment{
		ID: d.ID, Name: d.Name, ProjectID: d.ProjectID, Project: d.ProjectName,
		EnvironmentID: d.EnvironmentID, Environment: d.EnvironmentName,
		NodeID: d.NodeID, Node: d.NodeName, NodeStatus: d.NodeStatus, NodeUnreachableSince: d.NodeUnreachableSince,
		PipelineVersion: d.PipelineVersion, Status: d.Status, Reason: d.StatusReason, FailedStep: d.FailedStep,
		OwnerID: d.OwnerID, Owner: d.OwnerName, ClonedFrom: d.ClonedFrom, Tags: d.Tags,
		CPU: d.CPU, MemoryMB: d.MemoryMB, TTLSeconds: d.TTLSeconds,
		LastActivityAt: d.LastActivityAt, ExpiresAt: d.ExpiresAt, DeletePending: d.DeletePending,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, DeletedAt: d.DeletedAt,
		Access: access, URLs: urls, Degraded: deg.Degraded, DegradedReason: deg.Reason,
	}
}

// deploymentDetailOut is a single deployment with its steps and services.
func deploymentDetailOut(v deploy.View, access string) restapi.Deployment {
	out := deploymentOut(v.Deployment, access, v.URLs, deploy.Degradation{Degraded: v.Degraded, Reason: v.DegradedReason})
	out.Detail = &restapi.Detail{
		Steps:    make([]restapi.DeploymentStep, len(v.Steps)),
		Services: make([]restapi.DeploymentService, len(v.Services)),
	}
	for i, s := range v.Steps {
		out.Steps[i] = restapi.DeploymentStep{ID: s.NodeKey, Kind: s.Kind, Status: s.Status, Attempt: s.Attempt,
			Message: s.Message, Outputs: s.Outputs, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}
	}
	for i, s := range v.Services {
		out.Services[i] = restapi.DeploymentService{ID: s.NodeKey, ServiceID: s.ServiceID, Service: s.ServiceName,
			Image: s.Image, Tag: s.Tag, ContainerPort: s.ContainerPort, HostPort: s.HostPort, Ingress: s.Ingress,
			Health: s.Health, CPUPercent: s.CPUPercent, MemoryBytes: s.MemoryBytes, UpdatedAt: s.UpdatedAt,
			State: s.State, RestartCount: s.RestartCount, ExitCode: s.ExitCode, LastExitOOM: s.LastExitOOM,
			LastExitAt: s.LastExitAt, LastLines: s.LastLines, URL: s.URL}
	}
	return out
}

// deploymentDetail loads the full representation of dep for the caller.
func (d *Deps) deploymentDetail(c echo.Context, dep store.Deployment) (restapi.Deployment, error) {
	v, err := d.Deploy.View(c.Request().Context(), dep)
	if err != nil {
		return restapi.Deployment{}, err
	}
	lv, err := LevelsOf(c)
	if err != nil {
		return restapi.Deployment{}, err
	}
	return deploymentDetailOut(v, lv.Of(dep.ProjectID, dep.EnvironmentID).String()), nil
}

func userOut(u store.User) restapi.User {
	return restapi.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: u.Role, Active: u.Active,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func teamOut(t store.Team) restapi.Team {
	return restapi.Team{ID: t.ID, Name: t.Name, Description: t.Description, Members: t.Members,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func teamsOut(list []store.Team) []restapi.Team { return mapOut(list, teamOut) }

// mapOut converts each row of a list (never nil).
func mapOut[S, T any](list []S, out func(S) T) []T {
	res := make([]T, len(list))
	for i, s := range list {
		res[i] = out(s)
	}
	return res
}

func tokenOut(t store.APIToken) restapi.APIToken {
	return restapi.APIToken{ID: t.ID, UserID: t.UserID, Name: t.Name, Prefix: t.Prefix, ExpiresAt: t.ExpiresAt,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, CreatedAt: t.CreatedAt}
}

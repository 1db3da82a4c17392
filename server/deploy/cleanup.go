package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/robfig/cron/v3"

	"github.com/nullops/nullops/server/errs"
)

// CleanupExpired deletes every live deployment whose expires_at has passed,
// recording "expired" in its history and the audit log. It returns how many
// deletes it started.
func (s *Service) CleanupExpired(ctx context.Context) (int, error) {
	ids, err := s.Store.ExpiredDeployments(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	var failed []error
	for _, id := range ids {
		d, err := s.remove(ctx, System, id, "expire", map[string]any{"reason": "expired"})
		if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Conflict) {
			continue // deleted meanwhile
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("expire deployment %d: %w", id, err))
			continue
		}
		n++
		s.Log.Info().Int64("deployment_id", id).Str("name", d.Name).Str("environment", d.EnvironmentName).Msg("expired deployment deleted")
	}
	return n, errors.Join(failed...)
}

// StartCleanup runs CleanupExpired and FailOverdue on schedule (robfig/cron syntax, seconds
// field optional, descriptors like "@every 30s") until ctx ends.
func (s *Service) StartCleanup(ctx context.Context, schedule string) error {
	c, err := s.cleanupCron(ctx, schedule)
	if err != nil {
		return err
	}
	c.Start()
	go func() {
		<-ctx.Done()
		<-c.Stop().Done()
	}()
	return nil
}

// CheckCleanupSchedule returns why schedule is not a valid cleanup
// schedule, or nil.
func CheckCleanupSchedule(schedule string) error {
	_, err := cleanupParser().Parse(schedule)
	if err != nil {
		return fmt.Errorf("cleanup schedule %q: %w", schedule, err)
	}
	return nil
}

// RunCleanup is StartCleanup returning only when ctx has ended and the
// run in progress, if any, has finished: the singleton job of the
// auto-cleanup (server/app), so the next replica to run it starts after.
func (s *Service) RunCleanup(ctx context.Context, schedule string) error {
	c, err := s.cleanupCron(ctx, schedule)
	if err != nil {
		return err
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

func cleanupParser() cron.Parser {
	return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

func (s *Service) cleanupCron(ctx context.Context, schedule string) (*cron.Cron, error) {
	c := cron.New(cron.WithParser(cleanupParser()), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err := c.AddFunc(schedule, func() {
		if ctx.Err() != nil {
			return
		}
		s.cleanupRuns.Add(1)
		if _, err := s.CleanupExpired(ctx); err != nil {
			s.Log.Error().Err(err).Msg("auto-cleanup")
		}
		if _, err := s.FailOverdue(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error().Err(err).Msg("fail overdue deployments")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cleanup schedule %q: %w", schedule, err)
	}
	return c, nil
}

// CleanupRuns is how many times this process ran the auto-cleanup.
func (s *Service) CleanupRuns() int64 { return s.cleanupRuns.Load() }

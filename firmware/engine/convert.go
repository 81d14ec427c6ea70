package engine

import (
	"context"
	"path/filepath"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/lifecycle"
	"github.com/faxbox/faxbox/firmware/store"
)

// Submit hands a newly stored job to the engine and returns a copy of it
// taken before any worker can change it. From this call on the engine owns
// r: the caller must not read or write r.Job again (use the copy).
func (e *Engine) Submit(r *store.Record) *job.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	snap := r.Job.Clone()
	if e.closed {
		return snap
	}
	if _, ok := e.entries[r.Job.ID]; ok {
		return snap
	}
	en := &entry{rec: r}
	e.entries[r.Job.ID] = en
	e.armExpiry(en, e.cfg.Clock.Now())
	e.convQ = append(e.convQ, r.Job.ID)
	e.convC.Signal()
	return snap
}

func (e *Engine) convertWorker() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		for len(e.convQ) == 0 && !e.closed {
			e.convC.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			return
		}
		id := e.convQ[0]
		e.convQ = e.convQ[1:]
		en := e.entries[id]
		if en == nil || en.cancelConv != nil || en.inCall || (en.rec.Job.Status != job.Queued && en.rec.Job.Status != job.Converting) {
			e.mu.Unlock()
			continue // gone, ended, or queued twice: converted once
		}
		j := en.rec.Job
		j.Status = job.Converting
		j.UpdatedAt = e.cfg.Clock.Now()
		e.saveLocked(en)
		ctx, cancel := context.WithCancel(e.ctx)
		en.cancelConv = cancel
		jc := j.Clone()
		dir := e.cfg.Store.DocDir(id)
		inputs := documentInputs(dir, en.rec.Paths, j.Files)
		e.mu.Unlock()

		pages, code, err := e.cfg.Docs.Convert(ctx, jc, inputs, filepath.Join(dir, FaxFile))
		cancel()

		e.mu.Lock()
		en.cancelConv = nil
		if e.entries[id] != en || en.rec.Job.Status.Terminal() || e.closed {
			e.mu.Unlock()
			continue
		}
		now := e.cfg.Clock.Now()
		if err != nil {
			if code == "" {
				code = failure.DocumentUnreadable
			}
			e.log.Info("engine: conversion failed", "job", id, "code", code, "err", err)
			evs := lifecycle.FailDocument(j, code, err.Error(), now)
			e.endLocked(en, evs...)
		} else {
			j.Pages = pages
			e.readyLocked(en, now)
			e.kickLocked()
		}
		e.mu.Unlock()
	}
}

// documentInputs pairs a job's stored document paths (relative to dir) with
// the types decided when they were accepted. Files and paths are in the same
// order; a path without its file (a recording) has no type.
func documentInputs(dir string, paths []string, files []job.File) []Input {
	in := make([]Input, len(paths))
	for i, p := range paths {
		in[i].Path = filepath.Join(dir, p)
		if i < len(files) {
			in[i].Type = files[i].Type
		}
	}
	return in
}

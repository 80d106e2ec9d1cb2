package main

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// processCPU is the CPU time (user + system, all threads) process pid has
// used so far, from /proc: Linux only, elsewhere an error, and the bench
// then reports no CPU times.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime and stime fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc times: 100 on every Linux
// architecture Go supports. Runs last about a second, so a tick is ~1%.
const clockTicks = 100

// cpuMeter measures the CPU a run costs Caddy and the bench process.
type cpuMeter struct {
	caddyPID int
}

// cpuSample is the CPU used so far by Caddy and by the bench.
type cpuSample struct{ caddy, bench time.Duration }

func (m *cpuMeter) sample() (cpuSample, error) {
	c, err := processCPU(m.caddyPID)
	if err != nil {
		return cpuSample{}, err
	}
	b, err := processCPU(os.Getpid())
	return cpuSample{caddy: c, bench: b}, err
}

// works reports whether the OS tells CPU times.
func (m *cpuMeter) works() bool {
	_, err := m.sample()
	return err == nil
}

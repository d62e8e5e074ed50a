package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Team groups agents so conversations can be routed and reported per team.
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Members   int       `json:"members"`
	CreatedAt time.Time `json:"created_at"`
}

// Team errors callers branch on.
var (
	ErrTeamNotFound = errors.New("team not found")
	ErrTeamExists   = errors.New("a team with this name exists")
)

// ValidationError reports input a caller must fix; handlers answer it with 400.
type ValidationError string

func (e ValidationError) Error() string { return string(e) }

// maxNameRunes bounds user and team names.
const maxNameRunes = 100

// cleanName trims a display name and rejects empty, overlong or
// control-character names.
func cleanName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", ValidationError(what + " name is empty")
	}
	if !utf8.ValidString(name) {
		return "", ValidationError(what + " name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > maxNameRunes {
		return "", ValidationError(fmt.Sprintf("%s name has %d characters; the limit is %d", what, n, maxNameRunes))
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", ValidationError(what + " name contains a control character")
		}
	}
	return name, nil
}

// Teams lists every team by name with its member count.
func (d *Directory) Teams(ctx context.Context) ([]Team, error) {
	teams, err := d.store.Teams(ctx)
	if teams == nil && err == nil {
		teams = []Team{}
	}
	return teams, err
}

// TeamByID returns one team.
func (d *Directory) TeamByID(ctx context.Context, id string) (Team, error) {
	return d.store.TeamByID(ctx, id)
}

// CreateTeam adds a team with a unique name.
func (d *Directory) CreateTeam(ctx context.Context, name string) (Team, error) {
	name, err := cleanName("team", name)
	if err != nil {
		return Team{}, err
	}
	t := Team{ID: uuid.NewString(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := d.store.InsertTeam(ctx, t); err != nil {
		return Team{}, err
	}
	return t, nil
}

// RenameTeam changes a team's name.
func (d *Directory) RenameTeam(ctx context.Context, id, name string) (Team, error) {
	name, err := cleanName("team", name)
	if err != nil {
		return Team{}, err
	}
	if err := d.store.RenameTeam(ctx, id, name); err != nil {
		return Team{}, err
	}
	return d.store.TeamByID(ctx, id)
}

// DeleteTeam removes a team; its members keep their accounts and lose the team.
func (d *Directory) DeleteTeam(ctx context.Context, id string) error {
	return d.store.DeleteTeam(ctx, id)
}

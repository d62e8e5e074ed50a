package access

import (
	"context"
	"database/sql"
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
func (s *Store) Teams(ctx context.Context) ([]Team, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.name, t.created_at,
		(SELECT count(*) FROM staff_users u WHERE u.team_id = t.id)
		FROM staff_teams t ORDER BY t.name`)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	out := []Team{}
	for rows.Next() {
		var t Team
		var created string
		if err := rows.Scan(&t.ID, &t.Name, &created, &t.Members); err != nil {
			return nil, fmt.Errorf("read team: %w", err)
		}
		t.CreatedAt, _ = time.Parse(time.RFC3339, created)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return out, nil
}

// TeamByID returns one team.
func (s *Store) TeamByID(ctx context.Context, id string) (Team, error) {
	var t Team
	var created string
	err := s.db.QueryRowContext(ctx, `SELECT t.id, t.name, t.created_at,
		(SELECT count(*) FROM staff_users u WHERE u.team_id = t.id)
		FROM staff_teams t WHERE t.id = ?`, id).Scan(&t.ID, &t.Name, &created, &t.Members)
	if errors.Is(err, sql.ErrNoRows) {
		return Team{}, ErrTeamNotFound
	}
	if err != nil {
		return Team{}, fmt.Errorf("read team %s: %w", id, err)
	}
	t.CreatedAt, _ = time.Parse(time.RFC3339, created)
	return t, nil
}

// CreateTeam adds a team with a unique name.
func (s *Store) CreateTeam(ctx context.Context, name string) (Team, error) {
	name, err := cleanName("team", name)
	if err != nil {
		return Team{}, err
	}
	t := Team{ID: uuid.NewString(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	_, err = s.db.ExecContext(ctx, `INSERT INTO staff_teams (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, t.CreatedAt.Format(time.RFC3339))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return Team{}, ErrTeamExists
		}
		return Team{}, fmt.Errorf("create team %q: %w", name, err)
	}
	return t, nil
}

// RenameTeam changes a team's name.
func (s *Store) RenameTeam(ctx context.Context, id, name string) (Team, error) {
	name, err := cleanName("team", name)
	if err != nil {
		return Team{}, err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE staff_teams SET name = ? WHERE id = ?`, name, id)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return Team{}, ErrTeamExists
		}
		return Team{}, fmt.Errorf("rename team %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Team{}, ErrTeamNotFound
	}
	return s.TeamByID(ctx, id)
}

// DeleteTeam removes a team; its members keep their accounts and lose the team.
func (s *Store) DeleteTeam(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete team %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM staff_teams WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete team %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTeamNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET team_id = '' WHERE team_id = ?`, id); err != nil {
		return fmt.Errorf("detach members of team %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete team %s: commit: %w", id, err)
	}
	return nil
}

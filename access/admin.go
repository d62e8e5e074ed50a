package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// MountAdmin registers the staff administration API on r:
//
//	GET    /api/admin/users          list accounts (admin)
//	POST   /api/admin/users          create {email, name, password, roles, team_id} (admin)
//	GET    /api/admin/users/:id      one account (admin)
//	PATCH  /api/admin/users/:id      change {name?, roles?, team_id?, password?} (admin)
//	DELETE /api/admin/users/:id      delete an account (admin)
//	GET    /api/admin/teams          list teams with member counts (admin)
//	POST   /api/admin/teams          create {name} (admin)
//	PATCH  /api/admin/teams/:id      rename {name} (admin)
//	DELETE /api/admin/teams/:id      delete; members lose the team (admin)
//	GET    /api/admin/signins        the sign-in audit, newest first: ?failed=1, ?limit= (admin)
//	GET    /api/auth/staff           read-only directory of staff names, roles
//	                                 and teams for any signed-in staff member
//	                                 (transfer targets, report filters)
//
// An admin cannot delete their own account or drop their own admin role,
// and the last admin cannot be removed, so the system never locks itself out.
func (g *Guard) MountAdmin(r fiber.Router) {
	admin := g.Require(Admin)
	r.Get("/api/admin/users", admin, g.listUsers)
	r.Post("/api/admin/users", admin, g.createUser)
	r.Get("/api/admin/users/:id", admin, g.getUser)
	r.Patch("/api/admin/users/:id", admin, g.updateUser)
	r.Delete("/api/admin/users/:id", admin, g.deleteUser)
	r.Get("/api/admin/teams", admin, g.listTeams)
	r.Post("/api/admin/teams", admin, g.createTeam)
	r.Patch("/api/admin/teams/:id", admin, g.renameTeam)
	r.Delete("/api/admin/teams/:id", admin, g.deleteTeam)
	r.Get("/api/admin/signins", admin, g.listSignIns)
	r.Get("/api/auth/staff", g.Require(), g.staffDirectory)
}

type createUserRequest struct {
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	TeamID   string   `json:"team_id"`
	Sites    []string `json:"sites"`
}

type updateUserRequest struct {
	Name     *string   `json:"name"`
	Roles    *[]string `json:"roles"`
	TeamID   *string   `json:"team_id"`
	Password *string   `json:"password"`
	Sites    *[]string `json:"sites"`
}

type teamRequest struct {
	Name string `json:"name"`
}

// decodeJSON reads a JSON object body strictly: unknown fields and trailing
// data are errors that name the problem.
func decodeJSON(c *fiber.Ctx, into any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return fiber.NewError(fiber.StatusBadRequest, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return fiber.NewError(fiber.StatusBadRequest, "invalid JSON body: data after the object")
	}
	return nil
}

func parseRoles(names []string) ([]Role, error) {
	if len(names) == 0 {
		return nil, errors.New("a user needs at least one role")
	}
	seen := map[Role]bool{}
	out := make([]Role, 0, len(names))
	for _, n := range names {
		r, err := ParseRole(n)
		if err != nil {
			return nil, err
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}

func isAdmin(roles []Role) bool {
	for _, r := range roles {
		if r == Admin {
			return true
		}
	}
	return false
}

func (g *Guard) checkTeam(c *fiber.Ctx, teamID string) error {
	if teamID == "" {
		return nil
	}
	if _, err := g.store.TeamByID(c.UserContext(), teamID); err != nil {
		if errors.Is(err, ErrTeamNotFound) {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("team %q does not exist", teamID))
		}
		return err
	}
	return nil
}

func (g *Guard) listUsers(c *fiber.Ctx) error {
	users, err := g.store.Users(c.UserContext())
	if err != nil {
		return err
	}
	if users == nil {
		users = []User{}
	}
	return c.JSON(fiber.Map{"users": users})
}

func (g *Guard) getUser(c *fiber.Ctx) error {
	u, err := g.store.User(c.UserContext(), c.Params("id"))
	if errors.Is(err, ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "user not found")
	}
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (g *Guard) createUser(c *fiber.Ctx) error {
	var req createUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	name, err := cleanName("user", req.Name)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	roles, err := parseRoles(req.Roles)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	if err := g.checkTeam(c, req.TeamID); err != nil {
		return err
	}
	if !strings.Contains(req.Email, "@") || len(req.Email) > 254 {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("email %q is not an address", req.Email))
	}
	if len(req.Password) < 8 || len(req.Password) > 72 {
		return fiber.NewError(fiber.StatusBadRequest, "password must be 8 to 72 bytes long")
	}
	sites, err := cleanSites(req.Sites)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	u, err := g.store.CreateUser(c.UserContext(), req.Email, name, req.Password, roles, req.TeamID)
	if errors.Is(err, ErrExists) {
		return fiber.NewError(fiber.StatusConflict, err.Error())
	}
	if err != nil {
		return err
	}
	if err := g.store.SetSites(c.UserContext(), u.ID, sites); err != nil {
		return err
	}
	u.Sites = sites
	by, _ := UserOf(c)
	g.log.Info("staff user created", "user", u.ID, "roles", u.Roles, "by", by.ID)
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (g *Guard) updateUser(c *fiber.Ctx) error {
	var req updateUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	id := c.Params("id")
	u, err := g.store.User(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "user not found")
	}
	if err != nil {
		return err
	}
	name, roles, team, password := u.Name, u.Roles, u.TeamID, ""
	if req.Name != nil {
		if name, err = cleanName("user", *req.Name); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
	}
	if req.Roles != nil {
		if roles, err = parseRoles(*req.Roles); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
	}
	if req.TeamID != nil {
		team = *req.TeamID
		if err := g.checkTeam(c, team); err != nil {
			return err
		}
	}
	if req.Password != nil {
		password = *req.Password
		if len(password) < 8 || len(password) > 72 {
			return fiber.NewError(fiber.StatusBadRequest, "password must be 8 to 72 bytes long")
		}
	}
	var sites []string
	if req.Sites != nil {
		if sites, err = cleanSites(*req.Sites); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
	}
	if isAdmin(u.Roles) && !isAdmin(roles) {
		me, _ := UserOf(c)
		if me.ID == u.ID {
			return fiber.NewError(fiber.StatusConflict, "you cannot remove your own admin role")
		}
		if err := g.keepAnAdmin(c, u.ID); err != nil {
			return err
		}
	}
	if err := g.store.UpdateUser(ctx, id, name, roles, team, password); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fiber.NewError(fiber.StatusNotFound, "user not found")
		}
		return err
	}
	if req.Sites != nil {
		if err := g.store.SetSites(ctx, id, sites); err != nil {
			return err
		}
	}
	u, err = g.store.User(ctx, id)
	if err != nil {
		return err
	}
	by, _ := UserOf(c)
	g.log.Info("staff user updated", "user", u.ID, "roles", u.Roles, "sites", u.Sites, "password_changed", password != "", "by", by.ID)
	return c.JSON(u)
}

// keepAnAdmin refuses a change that would leave no admin besides leaving.
func (g *Guard) keepAnAdmin(c *fiber.Ctx, leaving string) error {
	users, err := g.store.Users(c.UserContext())
	if err != nil {
		return err
	}
	for _, o := range users {
		if o.ID != leaving && isAdmin(o.Roles) {
			return nil
		}
	}
	return fiber.NewError(fiber.StatusConflict, "this is the last admin; make another admin first")
}

func (g *Guard) deleteUser(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id := c.Params("id")
	me, _ := UserOf(c)
	if me.ID == id {
		return fiber.NewError(fiber.StatusConflict, "you cannot delete your own account")
	}
	u, err := g.store.User(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "user not found")
	}
	if err != nil {
		return err
	}
	if isAdmin(u.Roles) {
		if err := g.keepAnAdmin(c, u.ID); err != nil {
			return err
		}
	}
	if err := g.store.DeleteUser(ctx, id); err != nil {
		return err
	}
	g.log.Info("staff user deleted", "user", id, "by", me.ID)
	return c.SendStatus(fiber.StatusNoContent)
}

func (g *Guard) listSignIns(c *fiber.Ctx) error {
	limit := c.QueryInt("limit", 100)
	if limit < 1 || limit > 1000 {
		return fiber.NewError(fiber.StatusBadRequest, "limit must be between 1 and 1000")
	}
	list, err := g.store.SignIns(c.UserContext(), c.Query("failed") == "1", limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"signins": list})
}

func (g *Guard) listTeams(c *fiber.Ctx) error {
	teams, err := g.store.Teams(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"teams": teams})
}

func (g *Guard) createTeam(c *fiber.Ctx) error {
	var req teamRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := g.store.CreateTeam(c.UserContext(), req.Name)
	switch {
	case errors.Is(err, ErrTeamExists):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case errors.As(err, new(ValidationError)):
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	case err != nil:
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (g *Guard) renameTeam(c *fiber.Ctx) error {
	var req teamRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := g.store.RenameTeam(c.UserContext(), c.Params("id"), req.Name)
	switch {
	case errors.Is(err, ErrTeamNotFound):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.Is(err, ErrTeamExists):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case errors.As(err, new(ValidationError)):
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	case err != nil:
		return err
	}
	return c.JSON(t)
}

func (g *Guard) deleteTeam(c *fiber.Ctx) error {
	err := g.store.DeleteTeam(c.UserContext(), c.Params("id"))
	if errors.Is(err, ErrTeamNotFound) {
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// StaffEntry is the directory view of a staff member: no email, no secrets.
type StaffEntry struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Roles  []Role `json:"roles"`
	TeamID string `json:"team_id,omitempty"`
}

func (g *Guard) staffDirectory(c *fiber.Ctx) error {
	ctx := c.UserContext()
	users, err := g.store.Users(ctx)
	if err != nil {
		return err
	}
	teams, err := g.store.Teams(ctx)
	if err != nil {
		return err
	}
	me, _ := UserOf(c)
	staff := make([]StaffEntry, 0, len(users))
	for _, u := range users {
		if !me.SharesSite(u) {
			continue // staff of other sites are not this user's colleagues
		}
		staff = append(staff, StaffEntry{ID: u.ID, Name: u.Name, Roles: u.Roles, TeamID: u.TeamID})
	}
	return c.JSON(fiber.Map{"staff": staff, "teams": teams})
}

-- The page of `zoe serve` in headless Chromium, driven through chromedriver's WebDriver HTTP
-- API (the test starts both, and talks to chromedriver with curl): the form starts from
-- zoe-tiny's defaults, a submitted recipe's progress bar moves and its preview appears, the
-- video plays in the gallery, "use these settings" fills the form, a second job is canceled
-- from its button, and a phone-sized window has nothing wider than the screen.
-- SERVE_SCREENSHOT=docs/serve.png writes the screenshot of the README.
local t = require "testlib"
local zoe = require "zoe"
local files = require "zoe.storyboard.files"
local uv = zoe.uv

local ZOE = os.getenv("ZOE_TEST_ZOE") or arg[-1]
local function have(cmd) return os.execute("command -v " .. cmd .. " > /dev/null 2>&1") == true end
local CHROMIUM = have("chromium") and "chromium" or nil
if not (have("curl") and have("chromedriver") and CHROMIUM) then
  t.skip("serve in a browser", "chromium, chromium-driver or curl is not installed (make deps installs them)")
  return t.done()
end

local root = os.tmpname()
os.remove(root)
files.mkdir_p(root .. "/out")
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function read(path) return files.read(path) end

local function until_(cond, what, seconds)
  for _ = 1, (seconds or 60) * 10 do
    local v = cond()
    if v then return v end
    zoe.sleep(100)
  end
  error("timed out waiting for " .. what)
end

-- a child process with its output in a file
local function spawn(cmd, name)
  local out = root .. "/" .. name .. ".log"
  local ended = {}
  local handle, pid = uv.spawn("/bin/sh", {args = {"-c", "exec " .. cmd .. " > " .. q(out) .. " 2>&1"}},
    function(code, signal) ended.code, ended.signal = code, signal end)
  assert(handle, "cannot start " .. cmd)
  return {handle = handle, pid = pid, ended = ended, log = out}
end

local function stop(p)
  if p.ended.code == nil then uv.kill(p.pid, "sigint") end
  until_(function() return p.ended.code ~= nil end, "the end of a child", 20)
  p.handle:close()
end

local server = spawn(q(ZOE) .. " -q serve --port 0 --out " .. q(root .. "/out"), "serve")
local port = tonumber(until_(function() return (read(server.log) or ""):match("http://127%.0%.0%.1:(%d+)/") end,
  "the server's address"))
local base = ("http://127.0.0.1:%d"):format(port)

-- chromedriver on a port of its own: the first of a few that it accepts
local driver, dport
for try = 0, 9 do
  dport = 9600 + (uv.os_getpid() + try * 7) % 300
  driver = spawn(("chromedriver --port=%d"):format(dport), "chromedriver" .. try)
  local up = until_(function()
    if driver.ended.code ~= nil then return "ended" end
    return (read(driver.log) or ""):find("started successfully", 1, true) and "up"
  end, "chromedriver", 20)
  if up == "up" then break end
  driver.handle:close()
  driver = nil
end
assert(driver, "chromedriver did not start")

-- one WebDriver command; returns the decoded 'value'. body: a table, or JSON text ("{}": an
-- empty table would encode as a list)
local function wd(method, path, body)
  local f = root .. "/wd.json"
  local cmd = ("curl -s --max-time 120 -X %s -H 'Content-Type: application/json' %s -o %s %s"):format(method,
    body and ("--data-binary @" .. q(root .. "/wd.req")) or "", q(f), q(("http://127.0.0.1:%d%s"):format(dport, path)))
  if body then
    local w = assert(io.open(root .. "/wd.req", "wb"))
    w:write(type(body) == "string" and body or zoe.json.encode(body))
    w:close()
  end
  os.execute(cmd)
  local v = zoe.json.decode(read(f) or "{}")
  if type(v.value) == "table" and v.value.error then error("WebDriver: " .. v.value.error .. ": " .. tostring(v.value.message)) end
  return v.value
end

local session = wd("POST", "/session", {capabilities = {alwaysMatch = {browserName = "chrome", ["goog:chromeOptions"] = {
  binary = "/usr/bin/" .. CHROMIUM,
  -- a profile in the test's folder, removed with it (chromedriver's own temporary ones were left in /tmp)
  args = {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1300",
          "--user-data-dir=" .. root .. "/profile",
          "--autoplay-policy=no-user-gesture-required"}}}}}).sessionId
local S = "/session/" .. session
local function js(script, ...) return wd("POST", S .. "/execute/sync", {script = script, args = {...}}) end
local function find(css)
  local v = wd("POST", S .. "/element", {using = "css selector", value = css})
  return v["element-6066-11e4-a52e-4f735466cecf"]
end
local function click(css) wd("POST", S .. "/element/" .. find(css) .. "/click", "{}") end
local function type_into(css, text)
  local id = find(css)
  wd("POST", S .. "/element/" .. id .. "/clear", "{}")
  wd("POST", S .. "/element/" .. id .. "/value", {text = text})
end
local function screenshot(path)
  local png = wd("GET", S .. "/screenshot")
  local f = assert(io.open(root .. "/shot.b64", "wb"))
  f:write(png)
  f:close()
  os.execute(("base64 -d %s > %s"):format(q(root .. "/shot.b64"), q(path)))
end

local PROMPT = "a red circle moving right on a white background"

t.test("the form starts from zoe-tiny's defaults", function()
  wd("POST", S .. "/url", {url = base .. "/"})
  until_(function() return js("return document.getElementById('f-width').value") == "64" end, "the defaults")
  t.eq(js("return document.getElementById('f-frames').value"), "17")
  t.eq(js("return document.getElementById('f-sampler').value"), "euler")
  t.eq(js("return document.getElementById('f-model').value"), "zoe-tiny")
  until_(function() return js("return document.getElementById('status').textContent") == "live" end, "the event stream")
end)

local first_id
t.test("submit a recipe: the progress bar moves, the preview appears, the video plays in the gallery", function()
  type_into("#f-prompt", PROMPT)
  type_into("#f-steps", "40")
  type_into("#f-seed", "11")
  click("#render")
  local values, seen_preview = {}, false
  until_(function()
    local s = js([[const c = document.querySelector('#queue .job');
      if (!c) return null;
      const p = c.querySelector('progress'), img = c.querySelector('img.thumb');
      return {id: c.dataset.id, state: c.dataset.state, value: p.hasAttribute('value') ? p.value : -1, max: p.max,
              preview: img.getAttribute('src') || '', loaded: img.complete && img.naturalWidth > 0}]])
    if not s or s == zoe.json.null then return false end
    first_id = tonumber(s.id)
    if s.state == "running" and s.value > 0 then values[#values + 1] = s.value end
    if s.preview ~= "" and s.loaded then seen_preview = true end
    return s.state == "done"
  end, "the render", 120)
  t.ok(#values >= 2 and values[#values] > values[1], "the bar moved: " .. table.concat(values, " "))
  t.ok(seen_preview, "a preview image was shown")
  local v = until_(function()
    local r = js([[const v = document.querySelector('#gallery video');
      return v && v.readyState >= 2 ? {src: v.getAttribute('src'), duration: v.duration, w: v.videoWidth} : null]])
    return r ~= zoe.json.null and r
  end, "the video in the gallery", 30)
  t.ok(v.src:find("/outputs/web%-"), v.src)
  t.near(v.duration, 17 / 8, 0.2, "17 frames at 8 fps")
  t.eq(v.w, 64)
  local playing = until_(function()
    return js([[const v = document.querySelector('#gallery video'); v.play(); return v.currentTime > 0]])
  end, "the video to play", 20)
  t.ok(playing)
end)

t.test("use these settings fills the form from the video's recipe", function()
  type_into("#f-prompt", "something else")
  type_into("#f-steps", "3")
  click("#gallery .card button.use")
  t.eq(js("return document.getElementById('f-prompt').value"), PROMPT)
  t.eq(js("return document.getElementById('f-steps').value"), "40")
  t.eq(js("return document.getElementById('f-seed').value"), "11")
end)

t.test("a second job is canceled from its button", function()
  type_into("#f-steps", "500")
  type_into("#f-seed", "12")
  click("#render")
  until_(function()
    return js([[const c = document.querySelector('#queue .job[data-state=running]');
      return !!c && c.querySelector('.what').textContent.startsWith('step')]])
  end, "the second job to denoise", 60)
  if os.getenv("SERVE_SCREENSHOT") then
    until_(function() return js("const i = document.querySelector('#queue .job[data-state=running] img.thumb'); return !!i && !i.hidden && i.complete && i.naturalWidth > 0") end, "its preview")
    js("window.scrollTo(0, 0)")
    screenshot(os.getenv("SERVE_SCREENSHOT"))
  end
  local t0 = uv.hrtime()
  click("#queue .job[data-state=running] button.cancel")
  until_(function() return js("return !!document.querySelector('#queue .job[data-state=canceled]')") end, "the cancel", 20)
  print(("# canceled in the page %.2f s after the click (load: %s)"):format((uv.hrtime() - t0) / 1e9,
    (read("/proc/loadavg") or ""):match("^%S+")))
  t.eq(js("return document.querySelectorAll('#gallery video').length"), 1, "no video from the canceled job")
end)

t.test("a storyboard from its tab: the final cut plays, its shots say rendered, then cached", function()
  click("#tab-board")
  t.eq(js("return document.getElementById('recipe').classList.contains('hidden')"), true)
  -- the example board with 4 steps a shot, to stay quick
  js([[const b = JSON.parse(document.getElementById('f-board').value);
    for (const s of b.shots) s.steps = 4;
    document.getElementById('f-board').value = JSON.stringify(b);]])
  for run = 1, 2 do
    click("#board button[type=submit]")

    local badges = until_(function()
      local r = js([[const done = [...document.querySelectorAll('#queue .job[data-state=done]')]
          .filter((c) => c.querySelector('.title').textContent.startsWith('storyboard'));
        const card = [...document.querySelectorAll('#gallery .card')].find((c) => c.dataset.name.endsWith('/final.mp4'));
        if (done.length < ]] .. run .. [[ || !card) return null;
        const v = card.querySelector('video');
        return {badges: [...card.querySelectorAll('.shots .badge')].map((b) => b.textContent).join(','),
                ready: v.readyState, src: v.getAttribute('src')}]])
      return r ~= zoe.json.null and r.ready >= 2 and r
    end, "the storyboard, run " .. run, 120)
    t.ok(badges.src:find("/outputs/board%-two%-shapes/final%.mp4"), badges.src)
    t.eq(badges.badges, run == 1 and "shot 1 rendered,shot 2 rendered,shot 3 rendered"
      or "shot 1 cached,shot 2 cached,shot 3 cached")
  end
  click("#tab-recipe")
end)

t.test("phone-sized: nothing wider than the window", function()
  wd("POST", S .. "/window/rect", {width = 390, height = 844})
  zoe.sleep(300)
  local r = js("return {sw: document.documentElement.scrollWidth, w: window.innerWidth, cols: getComputedStyle(document.querySelector('.layout')).gridTemplateColumns.split(' ').length}")
  t.ok(r.sw <= r.w, ("scroll width %d, window %d"):format(r.sw, r.w))
  t.eq(r.cols, 1, "one column")
  if os.getenv("SERVE_SCREENSHOT") then
    js("window.scrollTo(0, 0)")
    screenshot((os.getenv("SERVE_SCREENSHOT"):gsub("%.png$", "-phone.png")))
  end
end)

pcall(wd, "DELETE", S)
stop(driver)
stop(server)
os.execute("rm -rf " .. q(root))
t.done()

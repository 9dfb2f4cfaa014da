-- The command `zoe convert IN OUT --type q8_0|q4_k|q5_k|q6_k|f16|bf16`: a weights file (a
-- DiT checkpoint: safetensors, its index, .pth, GGUF) written as GGUF in the layout of the
-- Wan GGUFs people download (city96 / ComfyUI-GGUF): official names without ComfyUI's
-- prefixes; the 2-D weights in the asked type, quantized as ggml's reference quantizers
-- quantize (the same bytes for the same floats); embeddings, time projection and head in
-- F16 (BF16 from a bf16 source); 1-D tensors, small ones, modulations and the 5-D patch
-- embedding in F32. A tensor whose rows do not split into blocks of 256 is stored as rows
-- of 256 with ComfyUI-GGUF's orig_shape key. One tensor is converted at a time. With
-- --type f8_e4m3|f8_e5m2 and a .safetensors OUT, ComfyUI's scaled fp8 instead.
local zoe = require "zoe"

local USAGE = [[
usage: zoe convert IN OUT --type TYPE
  IN      weights: .safetensors (or its .index.json), .pth, .gguf
  OUT     the GGUF file to write (written whole or not at all)
  --type  q8_0, q4_k, q5_k, q6_k, q4_0, q4_1, q5_0, q5_1, f16 or bf16 (GGUF), or
          f8_e4m3 / f8_e5m2 (OUT.safetensors: ComfyUI's scaled fp8)
  -h, --help   this help
]]

-- ggml's llama_ftype numbers for general.file_type (llama.h)
local FILE_TYPE = {f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 7, q5_0 = 8, q5_1 = 9, q4_k = 14, q5_k = 16, q6_k = 18,
                   bf16 = 32}

-- what ComfyUI-GGUF never quantizes in a Wan model (tools/convert.py)
local KEEP = {"modulation", "patch_embedding%.", "text_embedding%.", "time_projection%.", "time_embedding%.",
              "img_emb%.", "head%."}

local M = {}

local function strip(name)
  for _, p in ipairs {"model%.diffusion_model%.", "diffusion_model%.", "model%."} do
    local rest = name:match("^" .. p .. "(.*)$")
    if rest then return rest end
  end
  return name
end

local function block(dtype) return dtype:match("_k$") and 256 or 32 end

-- the dtype a tensor is stored in for a file of type 'want' (source dtype 'src')
function M.stored_type(name, shape, src, want)
  local numel = 1
  for _, n in ipairs(shape) do numel = numel * n end
  local base = (want == "bf16" or (want ~= "f16" and src == "bf16")) and "bf16" or "f16"
  if #shape <= 1 or numel <= 1024 or name:find("modulation") or name:find("^patch_embedding%.") then
    return "f32"
  end
  for _, p in ipairs(KEEP) do
    if name:find(p) then return base end
  end
  if FILE_TYPE[want] and want ~= "f16" and want ~= "bf16" and numel % block(want) == 0 then return want end
  return base
end

-- ComfyUI's scaled fp8 safetensors (--type f8_e4m3 or f8_e5m2 into a .safetensors): the 2-D
-- weights of the blocks as fp8 of max|W| / (fp8's largest) steps with X.scale_weight, a
-- scaled_fp8 marker; everything else as it is. Held in memory whole (a 1.3B DiT: 1.5 GB).
local FP8_MAX = {f8_e4m3 = 448, f8_e5m2 = 57344}
local function convert_fp8(input, output, want, opts)
  local w = zoe.load(input)
  local out = {scaled_fp8 = zoe.tensor.zeros(0):to(want)}
  local keys = w:keys()
  for i, name in ipairs(keys) do
    local t, short = w:get(name), strip(name)
    if opts and opts.progress then opts.progress(i, #keys, short) end
    if short:find("^blocks%.") and t:dim() == 2 and t:numel() > 1024 then
      local scale = t:abs():max():item() / FP8_MAX[want]
      if scale == 0 then scale = 1 end
      out[short] = (t:to("f32") * (1 / scale)):to(want)
      out[short:gsub("%.weight$", ".scale_weight")] = zoe.tensor.tensor(scale)
    else
      out[short] = t
    end
  end
  zoe.save(output, out)
end

-- Convert the weights at 'input' into 'output' as GGUF of type 'want' (or scaled fp8 safetensors);
-- returns the table of {name, dtype, shape} written. opts.progress(i, n, name) is called per tensor.
function M.convert(input, output, want, opts)
  want = want:lower()
  if FP8_MAX[want] then
    if not output:match("%.safetensors$") then
      error("zoe convert: fp8 is written as ComfyUI's scaled fp8 safetensors: give OUT a .safetensors name", 0)
    end
    return convert_fp8(input, output, want, opts)
  end
  if not FILE_TYPE[want] then error(("zoe convert: unknown --type '%s'\n%s"):format(want, USAGE), 0) end
  local w = zoe.load(input)
  local names, infos = {}, {}
  for _, name in ipairs(w:keys()) do names[#names + 1] = name end
  for i, name in ipairs(names) do
    local t = w:get(name)
    local out = strip(name)
    infos[i] = {name = out, dtype = M.stored_type(out, t:shape(), t:dtype(), want), shape = t:shape()}
  end
  local seen = {}
  for _, info in ipairs(infos) do
    if seen[info.name] then error(("zoe convert: two tensors become '%s'"):format(info.name), 0) end
    seen[info.name] = true
  end
  local meta = {
    {"general.architecture", "str", "wan"},
    {"general.quantization_version", "u32", 2},
    {"general.file_type", "u32", FILE_TYPE[want]},
  }
  local writer <close> = zoe.gguf_writer(output, meta, infos)
  for i, name in ipairs(names) do
    local t = w:get(name)
    if opts and opts.progress then opts.progress(i, #names, infos[i].name) end
    writer:write(t:dtype() == infos[i].dtype and t:contiguous() or t:to(infos[i].dtype))
  end
  writer:close()
  return infos
end

return setmetatable(M, {
  __call = function(_, args)
    local input, output, want
    local i = 1
    while i <= #args do
      local a = args[i]
      if a == "-h" or a == "--help" then
        io.stdout:write(USAGE)
        return
      elseif a == "--type" then
        i = i + 1
        want = args[i]
      elseif a:match("^%-%-type=") then
        want = a:match("^%-%-type=(.*)$")
      elseif not input then
        input = a
      elseif not output then
        output = a
      else
        io.stderr:write("zoe convert: unexpected argument '", a, "'\n", USAGE)
        os.exit(2)
      end
      i = i + 1
    end
    if not (input and output and want) then
      io.stderr:write(USAGE)
      os.exit(2)
    end
    local t0 = zoe.uv.hrtime()
    local ok, err = pcall(M.convert, input, output, want, {
      progress = function(k, n, name) zoe.progress {stage = "convert", step = k, steps = n, detail = name} end,
    })
    if not ok then
      io.stderr:write(tostring(err), "\n")
      os.exit(1)
    end
    io.stderr:write(("zoe convert: %s -> %s (%s) in %.1f s\n"):format(input, output, want, (zoe.uv.hrtime() - t0) / 1e9))
  end,
})

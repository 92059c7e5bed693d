-- tools/bench-pipeline.lua: wrk script that pipelines GET / requests.
-- Each write carries DEPTH requests (default 16; `wrk ... URL -- 8` for 8);
-- wrk counts every response and records one latency per batch.
-- Used by tools/bench.sh scenario c.
local depth = 16

init = function(args)
   depth = tonumber(args[1]) or depth
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format("GET", "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end

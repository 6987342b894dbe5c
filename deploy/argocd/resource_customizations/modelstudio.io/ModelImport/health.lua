-- Argo CD health of a modelstudio.io ModelImport or ModelDeployment, read in kstatus's order: being
-- deleted, a generation the controller has not observed yet, Stalled, Ready, Reconciling; a
-- resource paused by its annotation modelstudio.io/paused (Reconciling=False, reason Paused) is
-- Suspended whatever it showed before, and one whose outputs ConfigMap is someone else's
-- (OutputsReady=False, reason ConfigMapNotOwned) is Degraded: a person must rename or remove one.
-- It uses Lua's base and table libraries only, so it runs from argocd-cm without useOpenLibs.
local metadata = obj.metadata or {}
local status = obj.status or {}

local function number(value)
  if type(value) == "number" then
    return value
  end
  if type(value) == "string" then
    return tonumber(value)
  end
  return nil
end

local function condition(kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

local function holds(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message", as kubectl describe shows a condition.
local function explain(c)
  local reason = ""
  local message = ""
  if type(c.reason) == "string" then
    reason = c.reason
  end
  if type(c.message) == "string" then
    message = c.message
  end
  if reason == "" then
    return message
  end
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

local generation = number(metadata.generation)
local observed = number(status.observedGeneration)
-- A new resource reads observedGeneration -1 until the controller has looked at it.
local stale = generation ~= nil and observed ~= nil and observed ~= generation
local stalled = condition("Stalled")
local ready = condition("Ready")
local reconciling = condition("Reconciling")
local outputs = condition("OutputsReady")

if metadata.deletionTimestamp ~= nil then
  -- kstatus says Terminating: the remote object is deleted first, so say what the deletion waits for.
  if not stale and holds(stalled) then
    return {status = "Progressing", message = "Deleting: " .. explain(stalled)}
  end
  if not stale and holds(reconciling) then
    return {status = "Progressing", message = "Deleting: " .. explain(reconciling)}
  end
  if type(metadata.finalizers) == "table" and #metadata.finalizers > 0 then
    return {status = "Progressing", message = "Deleting: waiting for the finalizers " .. table.concat(metadata.finalizers, ", ")}
  end
  return {status = "Progressing", message = "Deleting"}
end
if stale then
  return {status = "Progressing", message = "Waiting for the controller to observe generation " .. generation}
end
if reconciling ~= nil and reconciling.status == "False" and reconciling.reason == "Paused" then
  return {status = "Suspended", message = explain(reconciling)}
end
if holds(stalled) then
  return {status = "Degraded", message = explain(stalled)}
end
if outputs ~= nil and outputs.status == "False" and outputs.reason == "ConfigMapNotOwned" then
  return {status = "Degraded", message = explain(outputs)}
end
if holds(ready) then
  return {status = "Healthy", message = explain(ready)}
end
if holds(reconciling) then
  return {status = "Progressing", message = explain(reconciling)}
end
if ready ~= nil then
  return {status = "Progressing", message = explain(ready)}
end
return {status = "Progressing", message = "Waiting for the controller to report the status"}

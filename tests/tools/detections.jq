# The same risks as eleven of ktrail's default rules, in jq, for scripts/bench's comparison.
def ok: (.responseStatus.code // 0) < 400;
def done: .stage == "ResponseComplete";
def sys: (.user.username // "") | (startswith("system:node:") or startswith("system:serviceaccount:kube-system:") or IN("system:apiserver","system:kube-scheduler","system:kube-controller-manager"));
def wl: (.objectRef.resource // "") | IN("pods","deployments","daemonsets","statefulsets","replicasets","jobs","cronjobs");
def podspec: if .objectRef.resource == "pods" then .requestObject.spec else .requestObject.spec.template.spec end;
def wlc: done and wl and (.objectRef.subresource == null) and (.verb | IN("create","update")) and ok and (sys | not);
select(
  (wlc and ([podspec.containers[]?.securityContext.privileged] | any(. == true))) or
  (wlc and ([podspec.volumes[]?.hostPath.path] | any(IN("/","/etc","/proc","/root","/var/run/docker.sock","/var/lib/kubelet","/etc/kubernetes")))) or
  (wlc and (podspec.hostNetwork == true)) or
  (wlc and ([podspec.containers[]?.securityContext.capabilities.add[]?] | any(IN("SYS_ADMIN","NET_ADMIN","SYS_PTRACE","SYS_MODULE","BPF","ALL")))) or
  (done and .objectRef.resource == "secrets" and (.verb | IN("get","list","watch")) and ok and (sys | not)) or
  (done and .objectRef.resource == "secrets" and ok and ((.userAgent // "") | test("^(curl|[Ww]get|python|Python|Go-http-client)"))) or
  (done and ((.objectRef.resource // "") | IN("clusterrolebindings","rolebindings")) and (.verb | IN("create","update","patch")) and ok and .requestObject.roleRef.name == "cluster-admin") or
  (done and ((.objectRef.resource // "") | IN("clusterroles","roles")) and ok and ([.requestObject.rules[]?.verbs[]?, .requestObject.rules[]?.resources[]?] | any(. == "*"))) or
  (done and .objectRef.resource == "services" and ok and (.requestObject.spec.type == "LoadBalancer")) or
  (.stage == "ResponseStarted" and .objectRef.subresource == "exec") or
  (done and .user.username == "system:anonymous" and .annotations["authorization.k8s.io/decision"] == "allow" and ((.requestURI // "") | test("^/(healthz|livez|readyz|version)([/?]|$)") | not))
) | .auditID

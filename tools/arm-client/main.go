// Command arm-client drives an ARM endpoint with the Azure SDK for Go, as a second client of
// the ARM emulator that shares no code with the Python SDK the project uses.
//
// It learns the cloud from <arm>/metadata/endpoints (a custom cloud, as for Azure Stack),
// takes its token from managed identity (IDENTITY_ENDPOINT and IDENTITY_HEADER: the App
// Service protocol), trusts the CA in SSL_CERT_FILE, and then, through long-running operations:
// creates a public IP prefix and an internal load balancer (network, 2025-05-01), reads them,
// lists a scale set's NICs (2018-10-01), reads the scale set (compute, 2025-04-01), deletes
// both and checks that the prefix is gone.
//
// It prints one JSON report on stdout: the cloud it found, every step, and every HTTP
// exchange with the ARM endpoint (method, path, api-version, status, Retry-After and
// whether Go's own parser takes it, the LRO headers, and the provisioningState in the body).
// It exits 1 when a step fails. Built and cached by scripts/arm-client.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// metadataAPIVersion is what current clients (the Azure CLI, azclient) ask for: a list of clouds.
const metadataAPIVersion = "2022-09-01"

type exchange struct {
	Method            string `json:"method"`
	Path              string `json:"path"`
	APIVersion        string `json:"apiVersion"`
	Status            int    `json:"status"`
	RetryAfter        string `json:"retryAfter,omitempty"`
	RetryAfterIsWhole bool   `json:"retryAfterIsWhole"`
	AsyncOperation    bool   `json:"asyncOperation"`
	Location          bool   `json:"location"`
	ProvisioningState string `json:"provisioningState,omitempty"`
	Code              string `json:"code,omitempty"`
}

type step struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

type report struct {
	Cloud     map[string]string `json:"cloud"`
	Steps     []step            `json:"steps"`
	Exchanges []exchange        `json:"exchanges"`
}

// recorder is a per-retry pipeline policy: it sees every HTTP exchange, polls included.
type recorder struct {
	mu   sync.Mutex
	seen []exchange
}

func (r *recorder) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp == nil {
		return resp, err
	}
	body, readErr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if readErr != nil {
		return resp, readErr
	}
	raw := req.Raw()
	e := exchange{
		Method:         raw.Method,
		Path:           raw.URL.Path,
		APIVersion:     raw.URL.Query().Get("api-version"),
		Status:         resp.StatusCode,
		RetryAfter:     resp.Header.Get("Retry-After"),
		AsyncOperation: resp.Header.Get("Azure-AsyncOperation") != "",
		Location:       resp.Header.Get("Location") != "",
	}
	if e.RetryAfter != "" {
		_, atoiErr := strconv.Atoi(e.RetryAfter) // what azcore's poller does with it
		e.RetryAfterIsWhole = atoiErr == nil
	}
	var doc struct {
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
		} `json:"properties"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.ProvisioningState = doc.Properties.ProvisioningState
		e.Code = doc.Error.Code
	}
	r.mu.Lock()
	r.seen = append(r.seen, e)
	r.mu.Unlock()
	return resp, nil
}

type runner struct {
	report report
	failed bool
}

func (r *runner) do(name string, f func() (string, error)) bool {
	detail, err := f()
	s := step{Name: name, OK: err == nil, Detail: detail}
	if err != nil {
		s.Detail = err.Error()
		r.failed = true
	}
	r.report.Steps = append(r.report.Steps, s)
	return err == nil
}

// customCloud reads <arm>/metadata/endpoints and picks the cloud whose resourceManager is arm.
func customCloud(ctx context.Context, armURL string) (cloud.Configuration, map[string]string, error) {
	url := strings.TrimSuffix(armURL, "/") + "/metadata/endpoints?api-version=" + metadataAPIVersion
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return cloud.Configuration{}, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cloud.Configuration{}, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cloud.Configuration{}, nil, fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	var clouds []struct {
		Name            string `json:"name"`
		ResourceManager string `json:"resourceManager"`
		Authentication  struct {
			LoginEndpoint string   `json:"loginEndpoint"`
			Audiences     []string `json:"audiences"`
		} `json:"authentication"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&clouds); err != nil {
		return cloud.Configuration{}, nil, fmt.Errorf("%s is not a list of clouds: %w", url, err)
	}
	for _, c := range clouds {
		if strings.TrimSuffix(c.ResourceManager, "/") != strings.TrimSuffix(armURL, "/") {
			continue
		}
		if len(c.Authentication.Audiences) == 0 {
			return cloud.Configuration{}, nil, errors.New("the cloud lists no audience")
		}
		cfg := cloud.Configuration{
			ActiveDirectoryAuthorityHost: c.Authentication.LoginEndpoint,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {
					Endpoint: c.ResourceManager,
					Audience: c.Authentication.Audiences[0],
				},
			},
		}
		found := map[string]string{
			"name":            c.Name,
			"resourceManager": c.ResourceManager,
			"loginEndpoint":   c.Authentication.LoginEndpoint,
			"audience":        c.Authentication.Audiences[0],
		}
		return cfg, found, nil
	}
	return cloud.Configuration{}, nil, fmt.Errorf("no cloud in %s has resourceManager %s", url, armURL)
}

func statusOf(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	}
	return ""
}

func main() {
	armURL := flag.String("arm", "", "ARM endpoint (https)")
	subscription := flag.String("subscription", "", "subscription ID")
	group := flag.String("resource-group", "", "resource group")
	location := flag.String("location", "", "region of the new resources")
	subnetID := flag.String("subnet", "", "subnet ID for the load balancer frontend")
	scaleSet := flag.String("scale-set", "", "scale set whose NICs to list")
	name := flag.String("name", "goclient", "name of the prefix and the load balancer")
	frequency := flag.Duration("frequency", 30*time.Second, "polling frequency without Retry-After (azcore's default)")
	timeout := flag.Duration("timeout", 2*time.Minute, "deadline for everything")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := &runner{report: report{Steps: []step{}, Exchanges: []exchange{}}}
	rec := &recorder{}
	poll := &runtime.PollUntilDoneOptions{Frequency: *frequency}

	var cfg cloud.Configuration
	ok := r.do("cloud from metadata", func() (string, error) {
		c, found, err := customCloud(ctx, *armURL)
		cfg, r.report.Cloud = c, found
		return found["name"], err
	})
	var cred azcore.TokenCredential
	ok = ok && r.do("managed identity credential", func() (string, error) {
		c, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Cloud: cfg},
		})
		cred = c
		return "", err
	})
	options := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud:            cfg,
		PerRetryPolicies: []policy.Policy{rec},
	}}
	var network *armnetwork.ClientFactory
	var compute *armcompute.ClientFactory
	ok = ok && r.do("clients", func() (string, error) {
		var err error
		if network, err = armnetwork.NewClientFactory(*subscription, cred, options); err != nil {
			return "", err
		}
		compute, err = armcompute.NewClientFactory(*subscription, cred, options)
		return "", err
	})
	if ok {
		prefixes := network.NewPublicIPPrefixesClient()
		balancers := network.NewLoadBalancersClient()
		r.do("create public IP prefix", func() (string, error) {
			poller, err := prefixes.BeginCreateOrUpdate(ctx, *group, *name, armnetwork.PublicIPPrefix{
				Location: location,
				SKU: &armnetwork.PublicIPPrefixSKU{
					Name: to.Ptr(armnetwork.PublicIPPrefixSKUNameStandard),
					Tier: to.Ptr(armnetwork.PublicIPPrefixSKUTierRegional),
				},
				Properties: &armnetwork.PublicIPPrefixPropertiesFormat{
					PrefixLength:           to.Ptr[int32](31),
					PublicIPAddressVersion: to.Ptr(armnetwork.IPVersionIPv4),
				},
			}, nil)
			if err != nil {
				return "", err
			}
			done, err := poller.PollUntilDone(ctx, poll)
			if err != nil {
				return "", err
			}
			return string(*done.Properties.ProvisioningState) + " " + *done.Properties.IPPrefix, nil
		})
		r.do("get public IP prefix", func() (string, error) {
			got, err := prefixes.Get(ctx, *group, *name, nil)
			if err != nil {
				return "", err
			}
			return *got.Properties.IPPrefix, nil
		})
		lbID := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/loadBalancers/%s",
			*subscription, *group, *name)
		r.do("create load balancer", func() (string, error) {
			poller, err := balancers.BeginCreateOrUpdate(ctx, *group, *name, internalLoadBalancer(*location, lbID, *subnetID), nil)
			if err != nil {
				return "", err
			}
			done, err := poller.PollUntilDone(ctx, poll)
			if err != nil {
				return "", err
			}
			frontend := done.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress
			if frontend == nil {
				return "", errors.New("the frontend has no private IP")
			}
			return string(*done.Properties.ProvisioningState) + " " + *frontend, nil
		})
		r.do("get load balancer", func() (string, error) {
			got, err := balancers.Get(ctx, *group, *name, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d rules", len(got.Properties.LoadBalancingRules)), nil
		})
		r.do("list scale set NICs", func() (string, error) {
			pager := network.NewInterfacesClient().NewListVirtualMachineScaleSetNetworkInterfacesPager(*group, *scaleSet, nil)
			count := 0
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					return "", err
				}
				count += len(page.Value)
			}
			return strconv.Itoa(count), nil
		})
		r.do("get scale set", func() (string, error) {
			got, err := compute.NewVirtualMachineScaleSetsClient().Get(ctx, *group, *scaleSet, nil)
			if err != nil {
				return "", err
			}
			return *got.Name, nil
		})
		r.do("delete load balancer", func() (string, error) {
			poller, err := balancers.BeginDelete(ctx, *group, *name, nil)
			if err != nil {
				return "", err
			}
			_, err = poller.PollUntilDone(ctx, poll)
			return "", err
		})
		r.do("delete public IP prefix", func() (string, error) {
			poller, err := prefixes.BeginDelete(ctx, *group, *name, nil)
			if err != nil {
				return "", err
			}
			_, err = poller.PollUntilDone(ctx, poll)
			return "", err
		})
		r.do("prefix is gone", func() (string, error) {
			_, err := prefixes.Get(ctx, *group, *name, nil)
			if err == nil {
				return "", errors.New("the prefix is still there")
			}
			if got := statusOf(err); got != "404 ResourceNotFound" {
				return "", fmt.Errorf("want 404 ResourceNotFound, got %q: %w", got, err)
			}
			return "404 ResourceNotFound", nil
		})
	}

	rec.mu.Lock()
	r.report.Exchanges = append(r.report.Exchanges, rec.seen...)
	rec.mu.Unlock()
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(r.report); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if r.failed {
		os.Exit(1)
	}
}

// internalLoadBalancer is a Standard internal load balancer like the one egressgw manages: one
// frontend in the subnet, a backend pool, an HTTP probe and a UDP rule with floating IP.
func internalLoadBalancer(location, lbID, subnetID string) armnetwork.LoadBalancer {
	ref := func(kind, name string) *armnetwork.SubResource {
		return &armnetwork.SubResource{ID: to.Ptr(lbID + "/" + kind + "/" + name)}
	}
	return armnetwork.LoadBalancer{
		Location: to.Ptr(location),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{
				Name: to.Ptr("fe"),
				Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
					Subnet:                    &armnetwork.Subnet{ID: to.Ptr(subnetID)},
					PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic),
				},
			}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("pool")}},
			Probes: []*armnetwork.Probe{{
				Name: to.Ptr("probe"),
				Properties: &armnetwork.ProbePropertiesFormat{
					Protocol:    to.Ptr(armnetwork.ProbeProtocolHTTP),
					Port:        to.Ptr[int32](8082),
					RequestPath: to.Ptr("/gw/goclient"),
				},
			}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{
				Name: to.Ptr("rule"),
				Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
					Protocol:                to.Ptr(armnetwork.TransportProtocolUDP),
					FrontendPort:            to.Ptr[int32](6000),
					BackendPort:             to.Ptr[int32](6000),
					EnableFloatingIP:        to.Ptr(true),
					FrontendIPConfiguration: ref("frontendIPConfigurations", "fe"),
					BackendAddressPool:      ref("backendAddressPools", "pool"),
					Probe:                   ref("probes", "probe"),
				},
			}},
		},
	}
}
